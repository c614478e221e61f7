"""Signal models: the ensemble members, their calibrated average, training and the saved artifacts."""
