"""Where frames and thumbnails are stored, and the URLs deliveries point at."""

from pydantic import Field

from framewatch.settings.base import Group, group


class S3Settings(Group):
    model_config = group("S3_")

    endpoint_url: str | None = None
    region: str = "us-east-1"


class BlobSettings(Group):
    model_config = group("BLOB_")

    # `s3://bucket/prefix` or a directory (optionally `file://`).
    url: str = "./data/blobs"
    # Where delivered image URLs point. Unset: presigned URLs for S3, the ingress's /blobs/ for a directory.
    public_url: str | None = None
    presign_expiry: int = 7 * 24 * 3600
    s3: S3Settings = Field(default_factory=S3Settings)
