"""Re-identification: vault tokens and fpe values back to the originals.

Only the Reidentify service calls this, after authorization, and audits every call.
The field names the policy rule that masked a value: an `fpe` rule decrypts with its
own tweak and key (`key_id` picks an older key after a rotation); a `tokenize` rule
looks its token up in its domain; a field no rule names is taken as a vault domain.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .operators import OperatorError
from .operators.fpe import FormatPreservingEncryption
from .operators.tokenize import Tokenize
from .policy import Plan
from .vault import Vault, VaultIntegrityError

MAX_VALUES = 10_000


@dataclass(frozen=True)
class MaskedValue:
    value: str
    field: str = ""
    key_id: str = ""


@dataclass(frozen=True)
class Revealed:
    value: str | None  # None: not revealed, see `error`
    error: str = ""  # unknown_token, unknown_field, fpe_error, ...


class Reidentifier:
    """Thread-safe (the service runs calls on a thread pool)."""

    def __init__(self, plan: Plan, vault: Callable[[], Vault | None]) -> None:
        """`vault` opens the vault on first use (a policy without tokenize rules may
        still have tokens from before to reveal)."""
        self._vault = vault
        self._fpe_lock = threading.Lock()  # an FF1 keeps one AES context
        self.use_plan(plan)

    def use_plan(self, plan: Plan) -> None:
        """The rules of a reloaded policy (fpe fields, tokenize domains)."""
        fpe: dict[str, FormatPreservingEncryption] = {}
        domains: dict[str, str] = {}
        for rule in plan.rules:
            if isinstance(rule.op, FormatPreservingEncryption):
                fpe[rule.rule_id] = rule.op
            elif isinstance(rule.op, Tokenize):
                domains[rule.rule_id] = rule.op.domain
        self._fpe, self._domains = fpe, domains

    def reveal(self, values: Sequence[MaskedValue]) -> list[Revealed]:
        """Raises VaultUnavailable when the vault cannot be reached."""
        return [self._one(item) for item in values]

    def _one(self, item: MaskedValue) -> Revealed:
        fpe = self._fpe.get(item.field)
        if fpe is not None:
            try:
                with self._fpe_lock:
                    return Revealed(fpe.reveal(item.value, item.key_id or None))
            except OperatorError as exc:
                return Revealed(None, exc.reason)
            except ValueError:
                return Revealed(None, "fpe_error")
        vault = self._vault()
        if vault is None:
            return Revealed(None, "no_vault")
        domain = self._domains.get(item.field, item.field) or None
        try:
            value = vault.detokenize(item.value, domain)
        except VaultIntegrityError:
            return Revealed(None, "integrity_error")
        return Revealed(value) if value is not None else Revealed(None, "unknown_token")
