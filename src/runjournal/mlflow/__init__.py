"""MLflow compatibility: ``runjournal server`` speaks MLflow's tracking REST protocol."""
