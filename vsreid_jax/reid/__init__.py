"""Re-identification: the detector's factory and inference API, its training targets and losses."""
