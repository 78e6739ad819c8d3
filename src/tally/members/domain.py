"""Pure member rules: identity normalisation."""

from __future__ import annotations

import re

NAMESPACE_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
PHONE_NAMESPACE = "phone"


def normalise_identity(namespace: str, external_id: str) -> tuple[str, str]:
    """Canonical form of an identity; phone numbers lose spaces, dashes and a leading ``+86``."""
    namespace = namespace.strip().lower()
    external_id = external_id.strip()
    if namespace == PHONE_NAMESPACE:
        external_id = re.sub(r"[\s-]", "", external_id)
        if external_id.startswith("+86"):
            external_id = external_id[3:]
    return namespace, external_id


def mask_phone(phone: str | None) -> str | None:
    """``138****5678``: enough to recognise, not enough to reuse."""
    if not phone or len(phone) < 7:
        return phone
    return f"{phone[:3]}****{phone[-4:]}"
