"""The export signer: a self-signed RSA certificate, made once per emulator when first needed.

The service signs with the key of its TLS certificate: SHA-256, RSASSA-PKCS1-v1_5, standard
base64. It names the certificate by the SHA-256 of its DER form, as 32 colon-separated
lowercase hex pairs, and never serves it; the emulator offers its own through
:attr:`Emulator.export_certificate_pem` so tests can check a signature the way an auditor
holding the certificate would.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ALGORITHM: Final = "SHA256withRSA"
_KEY_BITS: Final = 2048


class Signer:
    """Signs export summaries; the key pair is generated on first use (about 0.1 s)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None
        self._der = b""

    def _ensure(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)
                name = x509.Name(
                    [x509.NameAttribute(NameOID.COMMON_NAME, "kubernaut-audit emulator")]
                )
                now = datetime.now(UTC)
                certificate = (
                    x509.CertificateBuilder()
                    .subject_name(name)
                    .issuer_name(name)
                    .public_key(key.public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - timedelta(minutes=5))
                    .not_valid_after(now + timedelta(days=365))
                    .sign(key, hashes.SHA256())
                )
                self._der = certificate.public_bytes(serialization.Encoding.DER)
                self._key = key
            return self._key

    @property
    def certificate_pem(self) -> str:
        """The signing certificate, PEM-encoded."""
        self._ensure()
        certificate = x509.load_der_x509_certificate(self._der)
        return certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate's DER bytes: ``aa:bb:...`` (95 characters)."""
        self._ensure()
        digest = hashlib.sha256(self._der).hexdigest()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))

    def sign(self, data: bytes) -> str:
        """Base64 of the PKCS#1 v1.5 signature of SHA-256(data)."""
        key = self._ensure()
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()


def detached(signature: str, fingerprint: str) -> str:
    """The PEM-like block the service returns as ``detached_signature`` (no final newline)."""
    return (
        "-----BEGIN SIGNATURE-----\n"
        f"Algorithm: {ALGORITHM}\n"
        f"Certificate-Fingerprint: {fingerprint}\n"
        "\n"
        f"{signature}\n"
        "-----END SIGNATURE-----"
    )
