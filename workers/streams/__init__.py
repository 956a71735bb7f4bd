"""The streams stage: each live stream's state, recent frames and safe cover, and the review queue's frames."""
