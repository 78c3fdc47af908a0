"""Multi-round-trip requests (MRTR): asking the client for input in either era.

A handler asks with ``ctx.sample()`` / ``ctx.elicit()`` / ``ctx.list_roots()``, or returns an
:class:`~mcptrio.types.InputRequiredResult` itself. In 2026-07-28 that becomes an
``input_required`` result whose sealed ``requestState`` carries what earlier rounds
answered, so the retry may land on any process sharing the key; in the legacy era the same
requests go to the client as real server-to-client requests.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import attrs

from .._protocol.converter import to_wire
from .._protocol.errors import InvalidParams, MissingRequiredClientCapability
from .._protocol.jsonrpc import Request
from .._protocol.request_state import RequestStateError
from .._protocol.versions import Era
from ..types import InputRequiredResult
from .input_required import InputRequired

if TYPE_CHECKING:
    from .dispatch import CallScope

__all__ = ["InputRequired", "InputRound", "finish_input_required", "open_round"]

"""The only methods that may answer ``input_required``."""

_AUTO_PREFIX = "mcptrio/"
_CAPABILITY_OF = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}


@attrs.define
class InputRound:
    """What the client has answered so far for one request."""

    current: dict[str, Any] | None = None
    """This retry's ``inputResponses`` (raw), as the client sent them."""
    carried: dict[str, Any] = attrs.Factory(dict)
    """Answers from earlier rounds to the context helpers' own questions."""
    user_state: str | None = None
    """The handler's own ``requestState`` from the previous round, verified and unsealed."""
    _counters: dict[str, int] = attrs.Factory(dict)

    def restart(self) -> None:
        """A new execution of the handler numbers its questions from one again."""
        self._counters.clear()

    def next_key(self, kind: str) -> str:
        """A key for the next question of ``kind``; stable across re-executions."""
        count = self._counters.get(kind, 0) + 1
        self._counters[kind] = count
        return f"{_AUTO_PREFIX}{kind}/{count}"

    def answer(self, key: str) -> Any:
        """The client's answer to ``key``, from this round or an earlier one."""
        if self.current is not None and key in self.current:
            return self.current[key]
        return self.carried.get(key)

    async def ask_legacy(
        self, scope: CallScope, request: Request, result: InputRequiredResult
    ) -> None:
        """Legacy era: put the handler's questions to the client as real requests."""
        _check_capabilities(scope, result)
        answers: dict[str, Any] = {}
        for key, input_request in (result.input_requests or {}).items():
            wire = to_wire(input_request)
            answers[key] = await scope.outbound.request(
                wire["method"], wire.get("params"), related_request_id=request.id
            )
        self.carried.update(
            {k: v for k, v in (self.current or {}).items() if k.startswith(_AUTO_PREFIX)}
        )
        self.current = answers
        self.user_state = result.request_state
        self.restart()


def open_round(scope: CallScope, request: Request, params: dict[str, Any]) -> InputRound:
    """The input answered so far: verified ``requestState`` and this retry's answers."""
    if scope.era is not Era.MODERN:
        return InputRound()
    responses = params.get("inputResponses")
    if responses is not None and not isinstance(responses, dict):
        raise InvalidParams("inputResponses must be an object mapping request keys to results")
    token = params.get("requestState")
    if token is None:
        return InputRound(current=responses)
    if not isinstance(token, str):
        raise InvalidParams("requestState must be the string this server sent")
    try:
        state = scope.server.state_keyring.unseal(
            token,
            method=request.method,
            params=params,
            principal=scope.principal_key,
            now=time.time(),
        )
    except RequestStateError as exc:
        raise InvalidParams(
            f"requestState was rejected ({exc.reason}): send back exactly the requestState of"
            " the last input_required result for this same request, or start over without it",
            {"reason": exc.reason},
        ) from None
    carried = state.get("r")
    user_state = state.get("u")
    return InputRound(
        current=responses,
        carried=carried if isinstance(carried, dict) else {},
        user_state=user_state if isinstance(user_state, str) else None,
    )


def _check_capabilities(scope: CallScope, result: InputRequiredResult) -> None:
    for input_request in (result.input_requests or {}).values():
        capability = _CAPABILITY_OF.get(input_request.method)
        if capability is None:
            continue
        if getattr(scope.client_capabilities, capability, None) is None:
            raise MissingRequiredClientCapability(
                f"this request needs input the client cannot give: it did not declare the"
                f" {capability!r} capability",
                {"requiredCapabilities": {capability: {}}},
            )


def finish_input_required(
    scope: CallScope,
    request: Request,
    params: dict[str, Any],
    round_: InputRound,
    result: InputRequiredResult,
) -> dict[str, Any]:
    """The wire ``input_required`` result, with the answers so far sealed into its state."""
    if not result.input_requests and result.request_state is None:
        raise InvalidParams("an input_required result needs inputRequests or requestState")
    _check_capabilities(scope, result)
    carried = dict(round_.carried)
    carried.update({k: v for k, v in (round_.current or {}).items() if k.startswith(_AUTO_PREFIX)})
    config = scope.server.config
    token = scope.server.state_keyring.seal(
        {"u": result.request_state, "r": carried},
        method=request.method,
        params=params,
        principal=scope.principal_key,
        ttl=config.request_state_ttl,
        now=time.time(),
    )
    wire = to_wire(attrs.evolve(result, request_state=token))
    wire["resultType"] = "input_required"
    return wire
