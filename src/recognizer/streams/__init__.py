"""Smart monitoring: video files and cameras, smoothed scores, alert rules and events."""
