"""A small folder of handbook pages the client tests ingest, and what questions about it must find."""

from __future__ import annotations

from pathlib import Path

PAGES = {
    "it/vpn.md": "# VPN\n\nThe VPN endpoint vpn.example.com listens on port 4433 over UDP.",
    "it/laptops.txt": "Laptops are replaced every four years by the IT service desk.",
    "it/passwords.md": "# Passwords\n\nDatabase passwords are rotated every 90 days.",
    "hr/vacation.md": "# Vacation\n\nEvery employee gets 27 vacation days a year.",
    "hr/parental.txt": "Parental leave is 16 weeks at full pay.",
    "office/coffee.txt": "The coffee machine is on floor 2, next to the library.",
    "office/parking.html": "<html><body><p>Visitor parking is in garage B, level -1.</p></body></html>",
}


def write_corpus(folder: Path) -> Path:
    for name, text in PAGES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (folder / "office" / "notes.bin").write_bytes(b"\x00\x01")  # not a supported type: skipped
    return folder
