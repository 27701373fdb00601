"""Notebook formats: SOURCE text with its header and cell separators, JUPYTER, HTML and DBC archives.

A notebook is stored as its SOURCE text (header line included), which is what `export format=SOURCE`
returns; every other format is converted from and to it, so every format round-trips.
"""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from dataclasses import dataclass

from dbsync_emulator.errors import invalid


@dataclass(frozen=True)
class Lang:
    name: str  # PYTHON, SQL, SCALA, R
    comment: str
    extension: str  # file_type in exports, and the extension AUTO import strips
    dbc_extension: str

    @property
    def header(self) -> str:
        return f"{self.comment} Databricks notebook source"

    @property
    def separator(self) -> str:
        return f"{self.comment} COMMAND ----------"


LANGUAGES = {
    "PYTHON": Lang("PYTHON", "#", "py", "python"),
    "SQL": Lang("SQL", "--", "sql", "sql"),
    "SCALA": Lang("SCALA", "//", "scala", "scala"),
    "R": Lang("R", "#", "r", "r"),
}
_BY_EXTENSION = {"py": "PYTHON", "sql": "SQL", "scala": "SCALA", "r": "R"}
_BY_DBC_EXTENSION = {lang.dbc_extension: name for name, lang in LANGUAGES.items()}
_HTML_MODEL = re.compile(r'__DATABRICKS_NOTEBOOK_MODEL = "([A-Za-z0-9+/=]*)"')


def language_for_extension(path: str) -> str | None:
    """The notebook language an AUTO import infers from a path's extension."""
    _, dot, ext = path.rpartition(".")
    return _BY_EXTENSION.get(ext.lower()) if dot else None


def has_header(content: bytes) -> bool:
    first = content.lstrip()[:64].decode("utf-8", "replace")
    return any(first.startswith(lang.header) for lang in LANGUAGES.values())


def normalize_source(content: bytes, language: str) -> bytes:
    """SOURCE text as the service stores it: the header line first, added when missing."""
    lang = LANGUAGES[language]
    text = content.decode("utf-8", "replace")
    if text.lstrip().startswith(lang.header):
        return text.encode()
    return f"{lang.header}\n{text}".encode()


def cells(source: bytes, language: str) -> list[str]:
    """The command cells of a SOURCE notebook (header removed)."""
    lang = LANGUAGES[language]
    text = source.decode("utf-8", "replace")
    if text.lstrip().startswith(lang.header):
        text = text.lstrip()[len(lang.header) :]
    parts = re.split(rf"^\s*{re.escape(lang.separator)}\s*$", text, flags=re.MULTILINE)
    return [p.strip("\n") for p in parts]


def from_cells(commands: list[str], language: str) -> bytes:
    lang = LANGUAGES[language]
    body = f"\n\n{lang.separator}\n\n".join(commands)
    return f"{lang.header}\n{body}".encode()


# -- JUPYTER ------------------------------------------------------------------------------------
def to_jupyter(source: bytes, language: str, name: str) -> bytes:
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 0,
                "metadata": {},
                "outputs": [],
                "source": cell.splitlines(keepends=True),
            }
            for cell in cells(source, language)
        ],
        "metadata": {
            "application/vnd.databricks.v1+notebook": {"language": language.lower(), "notebookName": name},
            "language_info": {"name": language.lower()},
        },
        "nbformat": 4,
        "nbformat_minor": 0,
    }
    return json.dumps(notebook, indent=1).encode()


def from_jupyter(content: bytes) -> tuple[bytes, str]:
    """(SOURCE text, language) from an .ipynb document."""
    try:
        notebook = json.loads(content)
        metadata = notebook.get("metadata", {})
        language = (
            metadata.get("application/vnd.databricks.v1+notebook", {}).get("language")
            or metadata.get("language_info", {}).get("name")
            or "python"
        ).upper()
        commands = ["".join(c.get("source", [])) for c in notebook["cells"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise invalid("Invalid Jupyter notebook: content is not a valid .ipynb document") from None
    if language not in LANGUAGES:
        language = "PYTHON"
    return from_cells(commands, language), language


# -- HTML ---------------------------------------------------------------------------------------
def to_html(source: bytes, language: str, name: str) -> bytes:
    model = {"name": name, "language": language.lower(), "commands": cells(source, language)}
    encoded = base64.b64encode(json.dumps(model).encode()).decode()
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8"/>\n'
        f"<title>{name} - Databricks</title>\n"
        f'<script>var __DATABRICKS_NOTEBOOK_MODEL = "{encoded}";</script>\n'
        "</head>\n<body></body>\n</html>\n"
    ).encode()


def from_html(content: bytes) -> tuple[bytes, str]:
    match = _HTML_MODEL.search(content.decode("utf-8", "replace"))
    if not match:
        raise invalid("Invalid HTML notebook: no notebook model found")
    model = json.loads(base64.b64decode(match.group(1)))
    language = model.get("language", "python").upper()
    return from_cells(model.get("commands", []), language), language


# -- DBC archives -------------------------------------------------------------------------------
def dbc_entry(source: bytes, language: str, name: str, object_id: int) -> bytes:
    commands = [
        {"version": "CommandV1", "command": cell, "position": float(i + 1), "commandType": "auto"}
        for i, cell in enumerate(cells(source, language))
    ]
    document = {
        "version": "NotebookV1",
        "origId": object_id,
        "name": name,
        "language": LANGUAGES[language].dbc_extension,
        "commands": commands,
    }
    return json.dumps(document).encode()


def build_zip(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def read_dbc(content: bytes) -> list[tuple[str, bytes, str]]:
    """[(relative path without extension, SOURCE text, language)] of every notebook in a DBC archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise invalid("Invalid DBC archive: content is not a zip file") from None
    notebooks = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        stem, dot, ext = info.filename.rpartition(".")
        language = _BY_DBC_EXTENSION.get(ext)
        if not dot or language is None:
            continue
        try:
            document = json.loads(archive.read(info))
            commands = [c.get("command", "") for c in sorted(document["commands"], key=lambda c: c["position"])]
        except (ValueError, KeyError, TypeError):
            raise invalid(f"Invalid DBC archive: {info.filename} is not a notebook") from None
        notebooks.append((stem, from_cells(commands, language), language))
    return notebooks


def read_source_zip(content: bytes) -> list[tuple[str, bytes, str | None]]:
    """[(relative path, bytes, language or None for files)] of a SOURCE/AUTO directory archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise invalid("Invalid archive: content is not a zip file") from None
    entries = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        data = archive.read(info)
        language = language_for_extension(info.filename)
        if language and has_header(data):
            entries.append((info.filename.rpartition(".")[0], data, language))
        else:
            entries.append((info.filename, data, None))
    return entries
