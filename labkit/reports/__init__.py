"""Reports: notebooks rendered to HTML (`render`), and the tables (`views`) and figures they show."""
