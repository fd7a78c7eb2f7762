"""Start-up checks shared by the web app and the CLI: settings, policies, keys, audit set-up."""

from __future__ import annotations

from core import audit, auth
from core.keys import ensure_keyring, get_keyring
from core.policies import load_policies
from core.settings import Settings, check_settings


def prepare(settings: Settings, *, need_keyring: bool = True) -> None:
    """Fail fast on a wrong setting; in demo mode make the missing secret and keyring."""
    check_settings(settings, need_keyring=need_keyring)
    load_policies()
    if settings.demo:
        settings.signing_secret()
        ensure_keyring(settings.effective_key_file)
    if need_keyring:
        get_keyring()
    audit.configure(checkpoint_every=settings.audit_checkpoint_every)
    auth.warm_up()
