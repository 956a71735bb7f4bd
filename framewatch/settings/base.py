"""What every group of settings shares: read from FRAMEWATCH_<NAME> environment variables or a line in `.env`."""

from typing import Annotated

from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]
Delays = Annotated[list[float], NoDecode]  # seconds, comma-separated: "5,30,120"


def group(prefix: str) -> SettingsConfigDict:
    """A group's config: its variables are FRAMEWATCH_<PREFIX><FIELD> unless a field names its own."""
    return SettingsConfigDict(env_prefix=f"FRAMEWATCH_{prefix}", env_file=".env", extra="ignore", populate_by_name=True)


def split(value: object) -> object:
    """A comma-separated variable as a list (whitespace and empty parts dropped)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Group(BaseSettings):
    model_config = group("")


def variables(model: type[Group], path: str = "") -> dict[str, str]:
    """Every leaf setting of a group as {environment variable: its dotted path in the settings}."""
    found: dict[str, str] = {}
    prefix = model.model_config.get("env_prefix", "")
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, Group):
            found.update(variables(annotation, f"{path}{name}."))
        else:
            alias = field.validation_alias
            found[alias.upper() if isinstance(alias, str) else f"{prefix}{name}".upper()] = f"{path}{name}"
    return found
