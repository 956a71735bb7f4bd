"""Where frames and thumbnails are stored: a local directory or an S3-compatible bucket."""
