"""Self-contained demo cluster (filesystem broker, two workers, a producer) to watch with the dashboard."""
