"""The sandbox provider (``[sms] provider = "sandbox"``, the default in sandbox mode): nothing
leaves the process; the messages are kept in memory so a developer (``GET /sandbox/sms``), the
playground and the tests can read the code a person would have received.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway import i18n
from gateway.sms.provider import SmsMessage

KEPT = 20  # messages remembered per number


@dataclass(frozen=True)
class SentMessage:
    phone: str
    code: str
    text: str
    sent_at: float


class SandboxSms:
    """An ``SmsProvider`` that keeps what it is given: one process's memory (sandbox mode is
    one process), the last ``KEPT`` messages per number."""

    name = "sandbox"

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._sent: defaultdict[str, deque[SentMessage]] = defaultdict(lambda: deque(maxlen=KEPT))

    async def send(self, message: SmsMessage) -> None:
        """The text from the ``sms`` catalogue, in the requester's language. Only the sandbox
        renders one: Aliyun's and Tencent's texts are their approved templates (one per
        language, chosen by ``locale``: ``[sms.<provider>] template_codes`` / ``template_ids``),
        whose one parameter is the code."""
        text = i18n.gettext(
            message.locale,
            "sms",
            "Your verification code is %(code)s. It is valid for %(minutes)s minutes; "
            "do not share it with anyone.",
        ) % {"code": message.code, "minutes": message.minutes}
        sent = SentMessage(message.phone, message.code, text, self._clock())
        self._sent[message.phone].append(sent)

    def messages(self, phone: str) -> list[SentMessage]:
        """The messages sent to ``phone`` (E.164), the newest last."""
        return list(self._sent.get(phone, ()))
