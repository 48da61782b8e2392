"""Using the champion: predictions on photos, the HTTP API, the prediction log and input-drift reports."""
