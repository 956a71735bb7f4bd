"""Tencent Cloud credentials and endpoints, for the calls framewatch makes to it (Image Moderation)."""

from pydantic import SecretStr

from framewatch.settings.base import Group, group


class TencentSettings(Group):
    model_config = group("TENCENT_")

    secret_id: SecretStr | None = None
    secret_key: SecretStr | None = None
    region: str = "ap-guangzhou"
    ims_endpoint: str = "https://ims.tencentcloudapi.com"
    ims_biz_type: str | None = None
