"""Customer portal: access (issue #14). The pay link alone shows the masked contract and the amount;
to see details or act, the customer proves something only they know — a one-time code sent to the
e-mail address or mobile number on file, or postcode and date of birth — and gets a short portal
session (web/public/portal/session.py).

Nothing personal is shown before step-up: the page says which ways exist ("the e-mail address we
have on file"), never the address, number or name. A wrong answer says only that it did not match —
never which part, never whether anything exists — and after PORTAL_STEP_UP_FAILURES wrong answers
per pay link within an hour the link is locked for step-up for the rest of that hour (counted with
`limits` over RATE_LIMIT_STORAGE_URI, keyed by a hash of the link's token id; the per-IP limit on
POST /verify is web/safety/limits.py's). A code is stored only as its SHA-256 and never logged; it
is sent like the engine's messages: a row in the outbox, handed to the e-mail or SMS provider when
one is configured (in the embedded default the outbox row is the delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlmodel import Session, col, select

from activities.messaging import Outbox
from infra.config import Settings
from ledger.db import session_scope
from ledger.portal import customer_of_link
from models.ledger import Contract, Customer, PayLink
from models.messages import Channel
from models.portal import ChallengePurpose, PortalChallenge, StepUpMethod
from providers.base import ProviderError
from web.auth.audit import note
from web.deps import context
from web.public.pay import LinkRejected, link_rejected_page, resolve_link, touch_contract
from web.public.portal import codes
from web.public.portal import session as portal_session
from web.public.portal.i18n import LANGUAGE_COOKIE, LANGUAGES, language_of, portal_page, t, texts
from web.public.provider_checks import providers_for
from web.render import as_utc

log = logging.getLogger(__name__)
router = APIRouter()

LOCK_NAMESPACE = "portal-step-up"
ANSWER_CODE = "code"
ANSWER_KNOWN = "postcode_birth_date"

texts(
    {
        "portal.verify.title": ("Bestätigen Sie, dass Sie es sind", "Confirm it is you", "Bekræft, at det er dig"),
        "portal.verify.intro": (
            "Damit nur Sie Ihre Vertragsdetails, Dokumente und Möglichkeiten sehen, bestätigen Sie bitte kurz, "
            "dass Sie es sind. Wählen Sie einen Weg.",
            "So that only you see your contract details, documents and options, please confirm it is you. "
            "Choose one way.",
            "Bekræft kort, at det er dig, så kun du kan se dine policeoplysninger, dokumenter og muligheder. Vælg en "
            "af måderne.",
        ),
        "portal.verify.code.legend": ("Einmal-Code anfordern", "Get a one-time code", "Få en engangskode"),
        "portal.verify.code.email": (
            "per E-Mail an die bei uns hinterlegte E-Mail-Adresse",
            "by e-mail to the address we have on file",
            "på e-mail til den e-mailadresse, vi har registreret",
        ),
        "portal.verify.code.sms": (
            "per SMS an die bei uns hinterlegte Mobilnummer",
            "by text message to the mobile number we have on file",
            "på sms til det mobilnummer, vi har registreret",
        ),
        "portal.verify.code.send": ("Code senden", "Send code", "Send kode"),
        "portal.verify.code.resend": ("Neuen Code senden", "Send a new code", "Send en ny kode"),
        "portal.verify.code.sent.email": (
            "Wir haben Ihnen einen 6-stelligen Code per E-Mail geschickt. Er gilt {minutes} Minuten.",
            "We have sent you a 6-digit code by e-mail. It is valid for {minutes} minutes.",
            "Vi har sendt dig en 6-cifret kode på e-mail. Den gælder i {minutes} minutter.",
        ),
        "portal.verify.code.sent.sms": (
            "Wir haben Ihnen einen 6-stelligen Code per SMS geschickt. Er gilt {minutes} Minuten.",
            "We have sent you a 6-digit code by text message. It is valid for {minutes} minutes.",
            "Vi har sendt dig en 6-cifret kode på sms. Den gælder i {minutes} minutter.",
        ),
        "portal.verify.code.label": ("Code", "Code", "Kode"),
        "portal.verify.code.confirm": ("Code bestätigen", "Confirm code", "Bekræft kode"),
        "portal.verify.known.legend": (
            "Postleitzahl und Geburtsdatum",
            "Postcode and date of birth",
            "Postnummer og fødselsdato",
        ),
        "portal.verify.known.postcode": (
            "Postleitzahl Ihrer Anschrift",
            "Postcode of your address",
            "Postnummeret i din adresse",
        ),
        "portal.verify.known.birth_date": ("Geburtsdatum", "Date of birth", "Fødselsdato"),
        "portal.verify.known.confirm": ("Bestätigen", "Confirm", "Bekræft"),
        "portal.verify.none": (
            "Für diesen Link ist keine Bestätigung online möglich. Bitte rufen Sie uns an oder schreiben Sie uns.",
            "This link cannot be confirmed online. Please call or write to us.",
            "Dette link kan ikke bekræftes online. Ring eller skriv til os.",
        ),
        "portal.verify.no_match": (
            "Das hat nicht gepasst. Bitte prüfen Sie Ihre Eingabe und versuchen Sie es erneut.",
            "That did not match. Please check what you entered and try again.",
            "Det passede ikke. Kontrollér det, du har skrevet, og prøv igen.",
        ),
        "portal.verify.missing.code": ("Bitte geben Sie den Code ein.", "Please enter the code.", "Skriv koden."),
        "portal.verify.missing.known": (
            "Bitte geben Sie Postleitzahl und Geburtsdatum ein.",
            "Please enter your postcode and date of birth.",
            "Skriv dit postnummer og din fødselsdato.",
        ),
        "portal.verify.choose": (
            "Bitte wählen Sie, wohin wir den Code senden sollen.",
            "Please choose where we should send the code.",
            "Vælg, hvor vi skal sende koden hen.",
        ),
        "portal.verify.send_failed": (
            "Der Code konnte gerade nicht gesendet werden. Bitte versuchen Sie es gleich noch einmal "
            "oder wählen Sie einen anderen Weg.",
            "The code could not be sent just now. Please try again shortly or choose another way.",
            "Koden kunne ikke sendes lige nu. Prøv igen om lidt, eller vælg en anden måde.",
        ),
        "portal.verify.locked": (
            "Zu viele Versuche mit diesem Link. Aus Sicherheitsgründen ist die Bestätigung für bis zu eine "
            "Stunde gesperrt. Bezahlen können Sie weiterhin.",
            "Too many attempts with this link. For your security, confirming is locked for up to an hour. "
            "You can still pay.",
            "For mange forsøg med dette link. Af sikkerhedshensyn er bekræftelsen spærret i op til en time. Du kan "
            "stadig betale.",
        ),
        "portal.verify.back": ("Zurück zur Zahlung", "Back to payment", "Tilbage til betalingen"),
        "portal.code.subject": ("Ihr Bestätigungscode", "Your confirmation code", "Din bekræftelseskode"),
        "portal.code.text": (
            "Ihr Bestätigungscode für das Kundenportal: {code}\nEr gilt {minutes} Minuten. Geben Sie ihn "
            "nicht weiter – wir fragen Sie nie danach.",
            "Your confirmation code for the customer portal: {code}\nIt is valid for {minutes} minutes. Do not "
            "share it — we never ask you for it.",
            "Din bekræftelseskode til kundeportalen: {code}\nDen gælder i {minutes} minutter. Giv den ikke videre – "
            "vi spørger dig aldrig om den.",
        ),
        "portal.ended.title": ("Sitzung beendet", "Session ended", "Sessionen er afsluttet"),
        "portal.ended.text": (
            "Ihre Sitzung im Kundenportal ist beendet. Um wieder hineinzukommen, öffnen Sie bitte erneut den "
            "Link aus Ihrer Nachricht.",
            "Your customer portal session has ended. To come back, please open the link from your message again.",
            "Din session i kundeportalen er afsluttet. Åbn linket fra din besked igen for at komme tilbage.",
        ),
        "portal.problem.title": ("Das hat nicht geklappt", "That did not work", "Det lykkedes ikke"),
        "portal.problem.language": (
            "Sprache „{value}“ gibt es hier nicht; bitte wählen Sie Deutsch, English oder Dansk.",
            "Language “{value}” is not offered here; please choose Deutsch, English or Dansk.",
            "Sproget „{value}“ findes ikke her; vælg Deutsch, English eller Dansk.",
        ),
        "portal.problem.next": (
            "Die Rücksprungadresse muss eine Seite dieses Portals sein (ein Pfad, der mit / beginnt).",
            "The page to return to must be a page of this portal (a path starting with /).",
            "Siden, der skal vendes tilbage til, skal være en side i denne portal (en sti, der begynder med /).",
        ),
    }
)


# --- the step-up page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StepUpView:
    """What the step-up page offers — which ways exist, never the data behind them."""

    token: str
    email: bool
    sms: bool
    known: bool  # postcode and date of birth (the customer has a birth date on file)
    pending: str | None  # a live code was sent by this channel
    locked: bool
    code_minutes: int


def code_channels(customer: Customer) -> list[str]:
    """Where a code can go: an address or number that exists and is not known to be invalid."""
    found: list[str] = []
    if customer.email and customer.email_valid:
        found.append(Channel.EMAIL.value)
    if customer.phone and customer.phone_valid:
        found.append(Channel.SMS.value)
    return found


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def live_challenge(session: Session, link: PayLink, settings: Settings, now: datetime) -> PortalChallenge | None:
    """The newest unused, unexpired code asked for from this link, unless it died of wrong entries."""
    challenge = session.exec(
        select(PortalChallenge)
        .where(
            PortalChallenge.purpose == ChallengePurpose.STEP_UP,
            PortalChallenge.pay_link_token_id == link.token_id,
            col(PortalChallenge.used_at).is_(None),
        )
        .order_by(col(PortalChallenge.id).desc())
    ).first()
    if challenge is None or as_utc(challenge.expires_at) <= now:
        return None
    if challenge.attempts >= settings.portal_code_attempts:
        return None
    return challenge


# --- the lock per pay link --------------------------------------------------------------------------


class LinkLock:
    """Wrong step-up answers per pay link and hour, in the rate-limit storage (one per app)."""

    STATE = "portal_step_up_lock"

    def __init__(self, settings: Settings) -> None:
        self.limiter = FixedWindowRateLimiter(storage_from_string(settings.rate_limit_storage_uri))
        self.item: RateLimitItem = parse(f"{settings.portal_step_up_failures}/hour")

    @classmethod
    def of(cls, request: Request) -> LinkLock:
        found: LinkLock | None = getattr(request.app.state, cls.STATE, None)
        if found is None:
            found = cls(context(request).settings)
            setattr(request.app.state, cls.STATE, found)
        return found

    @staticmethod
    def key(token_id: str) -> str:
        return _hash(f"step-up:{token_id}")

    def locked(self, token_id: str) -> bool:
        return not self.limiter.test(self.item, LOCK_NAMESPACE, self.key(token_id))

    def failed(self, token_id: str) -> None:
        self.limiter.hit(self.item, LOCK_NAMESPACE, self.key(token_id))


# --- pages ----------------------------------------------------------------------------------------


def _view(request: Request, session: Session, link: PayLink, token: str, customer: Customer) -> StepUpView:
    settings = context(request).settings
    challenge = live_challenge(session, link, settings, _now())
    return StepUpView(
        token=token,
        email=Channel.EMAIL.value in code_channels(customer),
        sms=Channel.SMS.value in code_channels(customer),
        known=customer.birth_date is not None and bool(customer.postal_code.strip()),
        pending=challenge.channel if challenge is not None else None,
        locked=LinkLock.of(request).locked(link.token_id),
        code_minutes=settings.portal_code_minutes,
    )


def _step_up_page(
    request: Request, view: StepUpView, language: str, status_code: int = 200, error: str | None = None
) -> Response:
    return portal_page(request, "portal/verify.html", language, status_code, view=view, error=error)


@router.get("/verify/{token}", response_class=HTMLResponse)
def step_up_page(request: Request, token: str) -> Response:
    ctx = context(request)
    already = portal_session.current(request)
    try:
        with session_scope(ctx.engine) as session:
            link = resolve_link(session, ctx.settings, token)
            customer = customer_of_link(session, link)
            if already is not None and already.customer_id == customer.id:
                return RedirectResponse("/portal", status_code=303)
            view = _view(request, session, link, token, customer)
            language = language_of(request, customer)
    except LinkRejected as rejected:
        return link_rejected_page(request, rejected)
    return _step_up_page(request, view, language, 429 if view.locked else 200)


@router.post("/verify/{token}/code", response_class=HTMLResponse)
def send_code(request: Request, token: str, channel: Annotated[str, Form()] = "") -> Response:
    """A new 6-digit code to the e-mail address or mobile number on file; older unused codes die."""
    ctx = context(request)
    outbox = Outbox(ctx.engine, ctx.settings, providers_for(request))
    try:
        with session_scope(ctx.engine) as session:
            link = resolve_link(session, ctx.settings, token)
            customer = customer_of_link(session, link)
            language = language_of(request, customer)
            touch_contract(session, link.contract_id)
            view = _view(request, session, link, token, customer)
            if view.locked:
                return _step_up_page(request, view, language, 429)
            if channel not in code_channels(customer):
                return _step_up_page(request, view, language, 422, t(language, "portal.verify.choose"))
            code, challenge_id, to = _new_challenge(session, ctx.settings, link, customer, Channel(channel))
    except LinkRejected as rejected:
        return link_rejected_page(request, rejected)
    try:
        message_id = codes.send_code(
            outbox,
            key=codes.message_key(link.case_id, challenge_id),
            case_id=link.case_id,
            contract_id=link.contract_id,
            channel=Channel(channel),
            to=to,
            subject=t(language, "portal.code.subject") if channel == Channel.EMAIL else "",
            text=t(language, "portal.code.text", code=code, minutes=ctx.settings.portal_code_minutes),
            now=_now(),
        )
    except ProviderError as error:
        # The provider's detail may name the recipient: only its name and status go to the log.
        log.warning(
            "portal step-up code (challenge %d) not accepted by %s (status %s)",
            challenge_id,
            error.provider,
            error.status,
        )
        with session_scope(ctx.engine) as session:
            _kill(session, challenge_id)  # never delivered: it must not be usable
            view = _view(request, session, link, token, customer)
        return _step_up_page(request, view, language, 503, t(language, "portal.verify.send_failed"))
    log.info("portal step-up code sent by %s (message %d)", channel, message_id)
    note(request, portal_action="step_up_code", channel=channel)
    return RedirectResponse(f"/verify/{token}", status_code=303)


def _new_challenge(
    session: Session, settings: Settings, link: PayLink, customer: Customer, channel: Channel
) -> tuple[str, int, str]:
    """Write the challenge (the code's hash only): (the code, the challenge id, where it goes). A new
    request replaces older unused codes."""
    now = _now()
    assert customer.id is not None
    older = session.exec(
        select(PortalChallenge).where(
            PortalChallenge.purpose == ChallengePurpose.STEP_UP,
            PortalChallenge.customer_id == customer.id,
            col(PortalChallenge.used_at).is_(None),
        )
    ).all()
    for challenge in older:
        if as_utc(challenge.expires_at) > now:
            challenge.expires_at = now
            session.add(challenge)
    code = codes.new_code()
    to = (customer.email if channel == Channel.EMAIL else customer.phone) or ""
    challenge = PortalChallenge(
        purpose=ChallengePurpose.STEP_UP,
        customer_id=customer.id,
        pay_link_token_id=link.token_id,
        channel=channel.value,
        destination=to,
        code_hash=codes.code_hash(code),
        created_at=now,
        expires_at=now + timedelta(minutes=settings.portal_code_minutes),
    )
    session.add(challenge)
    session.flush()
    assert challenge.id is not None
    return code, challenge.id, to


def _kill(session: Session, challenge_id: int) -> None:
    challenge = session.get(PortalChallenge, challenge_id)
    if challenge is not None:
        challenge.used_at = _now()
        session.add(challenge)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _known_answer_matches(customer: Customer, postcode: str, birth_date: str) -> bool:
    """Postcode (whitespace ignored, case-insensitive) and birth date (YYYY-MM-DD), in constant time."""
    expected_postcode = "".join(customer.postal_code.split()).upper()
    expected_birth = customer.birth_date.isoformat() if customer.birth_date is not None else ""
    given_postcode = "".join(postcode.split()).upper()[:20]
    given_birth = birth_date.strip()[:20]
    postcode_ok = _same(given_postcode, expected_postcode) and bool(expected_postcode)
    birth_ok = _same(given_birth, expected_birth) and bool(expected_birth)
    return postcode_ok & birth_ok


@router.post("/verify/{token}", response_class=HTMLResponse)
def answer(
    request: Request,
    token: str,
    method: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
    postcode: Annotated[str, Form()] = "",
    birth_date: Annotated[str, Form()] = "",
) -> Response:
    """Check the code, or postcode and date of birth; on success begin the portal session."""
    ctx = context(request)
    lock = LinkLock.of(request)
    try:
        with session_scope(ctx.engine) as session:
            link = resolve_link(session, ctx.settings, token)
            customer = customer_of_link(session, link)
            contract = session.get(Contract, link.contract_id)
            assert contract is not None and customer.id is not None
            touch_contract(session, link.contract_id)
            language = language_of(request, customer)
            view = _view(request, session, link, token, customer)
            if view.locked:
                return _step_up_page(request, view, language, 429)
            passed: StepUpMethod | None = None
            if method == ANSWER_CODE:
                given = "".join(code.split())[:20]
                if not given:
                    return _step_up_page(request, view, language, 422, t(language, "portal.verify.missing.code"))
                challenge = live_challenge(session, link, ctx.settings, _now())
                if challenge is not None and codes.matches(given, challenge.code_hash):
                    challenge.used_at = _now()
                    passed = StepUpMethod.EMAIL_CODE if challenge.channel == "email" else StepUpMethod.SMS_CODE
                elif challenge is not None:
                    challenge.attempts += 1  # at PORTAL_CODE_ATTEMPTS the code dies
                if challenge is not None:
                    session.add(challenge)
            elif method == ANSWER_KNOWN:
                if not postcode.strip() or not birth_date.strip():
                    return _step_up_page(request, view, language, 422, t(language, "portal.verify.missing.known"))
                if view.known and _known_answer_matches(customer, postcode, birth_date):
                    passed = StepUpMethod.POSTCODE_BIRTH_DATE
            if passed is None:
                lock.failed(link.token_id)
                session.flush()
                view = _view(request, session, link, token, customer)
                status = 429 if view.locked else 422
                # For security monitoring: which link (by a hash of its id), how, the outcome; nothing personal.
                log.warning(
                    "portal step-up failed: link %s, method %s, %s",
                    LinkLock.key(link.token_id)[:12],
                    method[:30] or "-",
                    "link locked for the hour" if view.locked else "answer did not match",
                )
                return _step_up_page(request, view, language, status, t(language, "portal.verify.no_match"))
            customer_id, token_id, contract_number = customer.id, link.token_id, contract.contract_number
    except LinkRejected as rejected:
        return link_rejected_page(request, rejected)
    note(request, contract_number=contract_number, portal_action="step_up", method=passed.value)
    return portal_session.begin(request, customer_id, token_id, passed.value, language)


# --- language, sign-out, ended ------------------------------------------------------------------


def local_path(target: str) -> bool:
    """A path on this site (no scheme, no host, no protocol-relative //, no backslashes)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 500:
        return False
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def _cookie_language(request: Request) -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    return chosen if chosen in LANGUAGES else LANGUAGES[0]


def _set_language_cookie(request: Request, response: Response, language: str) -> None:
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=context(request).settings.public_base_url.startswith("https://"),
        path="/",
    )


@router.post("/portal/language", response_class=HTMLResponse)
def switch_language(
    request: Request, lang: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/portal"
) -> Response:
    customer = portal_session.current(request)
    shown = customer.language if customer is not None else _cookie_language(request)
    if lang not in LANGUAGES:
        text = t(shown, "portal.problem.language", value=lang[:20])
        return portal_page(request, "portal/problem.html", shown, 422, text=text)
    if next.startswith("/verify/") and next.endswith("/code"):
        next = next.removesuffix("/code")  # the code form answers on its page; switch back to the page itself
    if not local_path(next):
        return portal_page(request, "portal/problem.html", shown, 422, text=t(shown, "portal.problem.next"))
    response = RedirectResponse(next, status_code=303)
    if customer is not None:
        portal_session.set_language(request, customer, lang)
    else:
        _set_language_cookie(request, response, lang)
    note(request, portal_action="language", language=lang)
    return response


@router.post("/portal/sign-out")
def sign_out(request: Request) -> Response:
    customer = portal_session.current(request)
    response = portal_session.end(request, "/portal/ended")
    if customer is not None:  # the page that says goodbye speaks the session's language
        _set_language_cookie(request, response, customer.language)
    note(request, portal_action="sign_out")
    return response


@router.get("/portal/ended", response_class=HTMLResponse)
def ended(request: Request) -> Response:
    return portal_page(request, "portal/ended.html", _cookie_language(request))
