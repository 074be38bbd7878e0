"""Key operations on python-fido2 (CTAP layer; only passkey creation uses the WebAuthn client)."""
