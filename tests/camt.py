"""Builds camt.053.001.08 statements for tests, shaped like a German bank's export."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape


@dataclass
class Tx:
    amount: str
    ref: str | None = "ACSR-1"
    credit: bool = True
    currency: str = "EUR"
    booking: str = "2026-11-20"
    end_to_end: str = "NOTPROVIDED"
    rf: str | None = None
    text: list[str] = field(default_factory=list)
    debtor_iban: str | None = None
    reversal: bool = False


def _tx_details(tx: Tx) -> str:
    remittance = "".join(f"<Ustrd>{escape(t)}</Ustrd>" for t in tx.text)
    if tx.rf:
        remittance += (
            f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{tx.rf}</Ref></CdtrRefInf></Strd>"
        )
    debtor = (
        f"<RltdPties><Dbtr><Pty><Nm>Payer</Nm></Pty></Dbtr><DbtrAcct><Id><IBAN>{tx.debtor_iban}</IBAN></Id></DbtrAcct>"
        "</RltdPties>"
        if tx.debtor_iban
        else ""
    )
    return (
        f"<TxDtls><Refs><EndToEndId>{escape(tx.end_to_end)}</EndToEndId></Refs>"
        f'<Amt Ccy="{tx.currency}">{tx.amount}</Amt>{debtor}'
        f"<RmtInf>{remittance}</RmtInf></TxDtls>"
    )


def entry(*txs: Tx) -> str:
    """One booked entry; several transactions make a batch entry with one bank reference."""
    first = txs[0]
    ref = f"<AcctSvcrRef>{first.ref}</AcctSvcrRef>" if first.ref else ""
    total = first.amount if len(txs) == 1 else f"{sum(float(t.amount) for t in txs):.2f}"
    return (
        f'<Ntry><Amt Ccy="{first.currency}">{total}</Amt>'
        f"<CdtDbtInd>{'CRDT' if first.credit else 'DBIT'}</CdtDbtInd>"
        f"{'<RvslInd>true</RvslInd>' if first.reversal else ''}"
        f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{first.booking}</Dt></BookgDt><ValDt><Dt>{first.booking}</Dt></ValDt>"
        f"{ref}<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
        f"<NtryDtls>{''.join(_tx_details(t) for t in txs)}</NtryDtls></Ntry>"
    )


def statement(*entries: str, account: str = "DE02120300000000202051") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2026-11-20T18:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>S-1</Id><CreDtTm>2026-11-20T18:00:00</CreDtTm><Acct><Id><IBAN>{account}</IBAN></Id></Acct>"
        f"{''.join(entries)}</Stmt></BkToCstmrStmt></Document>"
    ).encode()
