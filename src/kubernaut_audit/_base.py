"""Base classes the generated models are built on: lenient for reading, strict for writing."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class OpenEnum(enum.StrEnum):
    """A string enum that keeps values it does not know.

    Servers add categories and outcomes over time. Reading such a value gives a pseudo-member
    that compares equal to its string, so a newer server never breaks a query. Writes refuse
    pseudo-members (see :class:`StrictModel`).
    """

    @classmethod
    def _missing_(cls, value: object) -> OpenEnum | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """Whether this value is one the SDK's spec lists."""
        return self._name_ in type(self).__members__


class LenientModel(BaseModel):
    """Base of every response model: unknown fields are kept, not rejected."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class StrictModel(BaseModel):
    """Base of request models: unknown fields and unknown enum values are refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _known_enum_values_only(self) -> Any:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, OpenEnum) and not value.is_known:
                allowed = ", ".join(m.value for m in type(value))
                raise ValueError(f"{name}={value.value!r} is not one of: {allowed}")
        return self
