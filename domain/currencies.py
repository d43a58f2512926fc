"""ISO 4217 currency codes money may be in: the one list the whole system checks against.

Taken from the ISO 4217 list of active codes (2026 edition, as published by
the maintenance agency and carried by ``pycountry``). Codes that are not a
currency a price or a fee can be stated in are left out on purpose: fund and
unit-of-account codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW, XDR, XSU,
XUA, XAD), precious metals (XAG, XAU, XPD, XPT), bond-market units (XBA-XBD),
the testing code XTS and "no currency" XXX.
Update this list when the agency publishes an amendment (a new code, a
withdrawal); nothing else in the code base lists currencies.
"""
from __future__ import annotations

CURRENCIES = frozenset("""
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR
MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR
SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX
USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split())


def is_currency(code: object) -> bool:
    """True for a current ISO 4217 code money can be stated in (``"CNY"``, ``"USD"``)."""
    return isinstance(code, str) and code in CURRENCIES
