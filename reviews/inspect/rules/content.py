"""What a file is or holds, whatever its language: hidden characters, secrets, secret files,
native code and executable bits."""

from __future__ import annotations

import hashlib
import re

import ahocorasick_rs

from reviews.inspect.rules.findings import Finding, Severity, make, mask_secret, rule
from reviews.inspect.rules.prefilter import Anchor
from reviews.inspect.rules.syntax import place
from reviews.inspect.textcheck import CharCategory, SuspiciousChar, category_of, find_suspicious

__all__ = [
    "binary_finding",
    "executable_bit_finding",
    "hidden_character_findings",
    "secret_file_finding",
    "secret_findings",
    "suspicious_chars",
]

TROJAN_SOURCE = rule(
    "content.trojan-source",
    Severity.HIGH,
    "Bidirectional control characters (high) and zero-width or invisible characters (medium "
    "in code, info in documents), with their line.",
)
SECRET = rule(
    "content.secret",
    Severity.HIGH,
    "A credential in a file: npm, GitHub, AWS, Slack, Stripe, GitLab or Google keys, private "
    "keys; shown masked.",
)
SECRET_FILE = rule(
    "content.secret-file",
    Severity.HIGH,
    "A file that usually holds secrets: .env, .npmrc, .netrc, .git-credentials, private keys "
    "(id_rsa, *.pem), a .git folder.",
)
NATIVE = rule(
    "content.native-binary",
    Severity.HIGH,
    "Native executable code (ELF, PE, Mach-O; .node, .exe, .dll, .so, .dylib); WebAssembly and "
    "archives are medium, other binaries low.",
)
EXECUTABLE = rule(
    "content.executable-bit",
    Severity.MEDIUM,
    "A file that became executable (a new file with an executable bit, or a mode change).",
)

MAX_PER_FILE = 20
DOCUMENT_SUFFIXES = (".md", ".markdown", ".txt", ".rst", ".adoc", ".html", ".htm")

_SECRETS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("an npm token", re.compile(rb"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])")),
    ("a GitHub token", re.compile(rb"gh[pousr]_[A-Za-z0-9]{36,255}(?![A-Za-z0-9])")),
    ("a GitHub token", re.compile(rb"github_pat_[A-Za-z0-9_]{22,255}")),
    ("an AWS access key id", re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")),
    (
        "a private key",
        re.compile(rb"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY"),
    ),
    ("a Slack token", re.compile(rb"xox[bpas]-[0-9A-Za-z-]{10,}")),
    ("a Stripe live key", re.compile(rb"sk_live_[0-9A-Za-z]{24,}")),
    ("a GitLab token", re.compile(rb"glpat-[0-9A-Za-z_-]{20}")),
    ("a Google API key", re.compile(rb"AIza[0-9A-Za-z_-]{35}")),
)
_PLACEHOLDER = re.compile(rb"EXAMPLE|XXXX|xxxx|0{12}|your[_-]?token", re.IGNORECASE)


def hidden_character_findings(path: str, data: bytes) -> list[Finding]:
    """One finding per line that holds bidi controls or invisible characters."""
    lines: dict[int, list[tuple[int, str, CharCategory]]] = {}
    for char in suspicious_chars(data, limit=2_000):
        if char.category.is_trojan:
            lines.setdefault(char.line, []).append((char.column, char.label, char.category))
    document = path.lower().endswith(DOCUMENT_SUFFIXES)
    findings: list[Finding] = []
    for line, chars in sorted(lines.items())[:MAX_PER_FILE]:
        bidi = [label for _col, label, category in chars if category is CharCategory.BIDI]
        if bidi:
            severity = Severity.MEDIUM if document else Severity.HIGH
            title = f"Bidirectional control character: {', '.join(dict.fromkeys(bidi))}"
        else:
            severity = Severity.INFO if document else Severity.MEDIUM
            labels = dict.fromkeys(label for _col, label, _cat in chars)
            title = f"Invisible character: {', '.join(labels)}"
        visible = _marked(_window(_line_text(data, line), chars[0][0]))
        findings.append(
            make(
                TROJAN_SOURCE,
                title,
                path=path,
                line=line,
                column=chars[0][0],
                excerpt=visible,
                key=visible,
                severity=severity,
            )
        )
    return findings


# Where textcheck's characters can be: C0 and C1 controls, and the blocks of its bidi and
# invisible ones (a test checks that every character it flags is in here).
_SUSPICIOUS_BLOCKS = (
    (0x00, 0x9F),
    (0xAD, 0xAD),
    (0x34F, 0x34F),
    (0x61C, 0x61C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180E, 0x180E),
    (0x2000, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xE0000, 0xE01EF),
)
SUSPICIOUS_CHARACTERS = tuple(
    chr(code)
    for low, high in _SUSPICIOUS_BLOCKS
    for code in range(low, high + 1)
    if category_of(chr(code)) is not None
)
# UTF-8 never makes one character's bytes a prefix of another's, and a lead byte always starts
# a character (for "replace" decoding too): a match in the bytes is a character of the text.
_SUSPICIOUS = ahocorasick_rs.BytesAhoCorasick(
    [char.encode() for char in SUSPICIOUS_CHARACTERS],
    implementation=ahocorasick_rs.Implementation.DFA,
)


def suspicious_chars(data: bytes, *, limit: int) -> list[SuspiciousChar]:
    """`textcheck.find_suspicious(data.decode("utf-8", "replace"), limit=limit)`, found in the
    bytes (an automaton instead of a character class tried at every character, and only the
    lines that hold one decoded): the same characters, lines and columns."""
    found: list[SuspiciousChar] = []
    line, line_start, column_at, column = 1, 0, 0, 1
    for index, start, end in _SUSPICIOUS.find_matches_as_indexes(data):
        char = SUSPICIOUS_CHARACTERS[index]
        if char == "\r" and data[end : end + 1] == b"\n":
            continue  # only a carriage return on its own is suspicious
        if len(found) >= limit:
            break
        newlines = data.count(b"\n", column_at, start)
        if newlines:
            line += newlines
            line_start = data.rfind(b"\n", column_at, start) + 1
            column_at, column = line_start, 1
        column += len(data[column_at:start].decode("utf-8", "replace"))
        column_at = start
        category = category_of(char, at_start=start == 0)
        assert category is not None
        found.append(SuspiciousChar(line, column, ord(char), category))
    return found


def _line_text(data: bytes, line: int) -> str:
    """Line `line` (1-based, split on `\\n`) of the decoded text."""
    start = 0
    for _ in range(line - 1):
        start = data.find(b"\n", start) + 1
        if start == 0:
            return ""
    end = data.find(b"\n", start)
    return data[start : end if end >= 0 else len(data)].decode("utf-8", "replace")


def _window(line: str, column: int, width: int = 150) -> str:
    """The part of a (possibly minified, very long) line around a column."""
    if len(line) <= width:
        return line
    start = max(0, column - 1 - width // 3)
    return ("…" if start else "") + line[start : start + width] + "…"


def _marked(line: str) -> str:
    """The line with every suspicious character written as `[U+202E]`, never itself."""
    marks = {char.column: char.codepoint for char in find_suspicious(line, limit=200)}
    if not marks:
        return line
    out = []
    for column, char in enumerate(line, 1):
        out.append(f"[U+{marks[column]:04X}]" if column in marks else char)
    return "".join(out)


def secret_findings(path: str, data: bytes, anchors: list[Anchor]) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[int] = set()
    for anchor in anchors:
        window = data[anchor.start : anchor.start + 300]
        for label, pattern in _SECRETS:
            match = pattern.match(window)
            if match is None or _PLACEHOLDER.search(match.group()):
                continue
            if anchor.start in seen:
                break
            seen.add(anchor.start)
            secret = match.group().decode("ascii", "replace")
            where = place(data, anchor.start)
            findings.append(
                make(
                    SECRET,
                    f"Looks like {label}: {mask_secret(secret)}",
                    path=path,
                    line=where.line,
                    column=where.column,
                    excerpt=where.excerpt.replace(secret, mask_secret(secret)),
                    key=f"{label}:{hashlib.sha256(match.group()).hexdigest()[:16]}",
                )
            )
            break
        if len(findings) >= MAX_PER_FILE:
            break
    return findings


_KEY_NAMES = frozenset({"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"})
_HARMLESS_ENV = (".example", ".sample", ".template", ".dist", ".defaults", ".schema")
_NPMRC_SECRET = re.compile(rb"_authToken|_auth\s*=|_password|:_authToken")


def secret_file_finding(path: str, data: bytes | None) -> Finding | None:
    """The secret-file finding for a path, if its name says it holds secrets."""
    parts = path.split("/")
    name = parts[-1]
    lower = name.lower()
    severity: Severity | None = None
    what = ""
    if ".git" in parts[:-1]:
        severity, what = Severity.MEDIUM, "a .git folder (its history and config can hold secrets)"
        path = "/".join(parts[: parts.index(".git") + 1])
    elif lower == ".env" or (lower.startswith(".env.") and not lower.endswith(_HARMLESS_ENV)):
        severity, what = Severity.HIGH, "an environment file (.env)"
    elif lower in (".npmrc", ".yarnrc", ".yarnrc.yml"):
        holds = data is not None and bool(_NPMRC_SECRET.search(data))
        severity = Severity.HIGH if holds or data is None else Severity.MEDIUM
        what = f"a package manager config ({name})" + (" with credentials" if holds else "")
    elif lower in (".netrc", "_netrc", ".git-credentials", ".pypirc"):
        severity, what = Severity.HIGH, f"a credentials file ({name})"
    elif lower in _KEY_NAMES:
        severity, what = Severity.HIGH, f"an SSH private key ({name})"
    elif lower.endswith((".pem", ".key", ".p12", ".pfx")):
        severity, what = Severity.MEDIUM, f"a key or certificate file ({name})"
    elif path.endswith((".aws/credentials", ".docker/config.json", ".kube/config")):
        severity, what = Severity.HIGH, f"a credentials file ({path})"
    if severity is None:
        return None
    return make(SECRET_FILE, f"Ships {what}", path=path, key=path, severity=severity)


_ELF = b"\x7fELF"
_MACHO = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
_NATIVE_SUFFIXES = (".node", ".exe", ".dll", ".so", ".dylib", ".sys", ".scr", ".com")
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".7z", ".rar", ".jar", ".xz", ".bz2")
_MEDIA_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".ico",
    ".webp",
    ".avif",
    ".bmp",
    ".woff",
    ".woff2",
    ".ttf",
    ".otf",
    ".eot",
    ".mp3",
    ".mp4",
    ".wav",
    ".ogg",
    ".webm",
    ".pdf",
    ".svgz",
)


def binary_finding(path: str, head: bytes | None, is_binary: bool, sha256: str) -> Finding | None:
    """What a binary (or native-named) file is; `head` is its first bytes if they were read."""
    lower = path.lower()
    kind = _native_kind(head or b"")
    if kind is None and lower.endswith(_NATIVE_SUFFIXES):
        kind = f"a native module or program ({lower.rsplit('.', 1)[-1]})"
    severity = Severity.HIGH
    if kind is None and (lower.endswith(".wasm") or (head or b"").startswith(b"\0asm")):
        kind, severity = "WebAssembly", Severity.MEDIUM
    if kind is None and lower.endswith(_ARCHIVE_SUFFIXES):
        kind, severity = "an archive", Severity.MEDIUM
    if kind is None and is_binary and not lower.endswith(_MEDIA_SUFFIXES):
        kind, severity = "a binary file", Severity.LOW
    if kind is None:
        return None
    return make(
        NATIVE,
        f"Ships {kind}",
        path=path,
        key=f"{path}:{sha256}",
        severity=severity,
    )


def _native_kind(head: bytes) -> str | None:
    if head.startswith(_ELF):
        return "an ELF executable or library"
    if head.startswith(_MACHO):
        return "a Mach-O executable or library"
    if head.startswith(b"\xca\xfe\xba\xbe") and len(head) >= 8 and head[4:6] == b"\0\0":
        return "a Mach-O universal binary"  # a Java class has a version above 0 there
    if head.startswith(b"MZ") and b"PE\0\0" in head[:1024]:
        return "a Windows executable or DLL"
    return None


def executable_bit_finding(path: str, mode: int, old_mode: int | None, is_bin: bool) -> Finding:
    octal = f"{mode & 0o7777:o}"
    title = (
        f"Became executable ({old_mode & 0o7777:o} → {octal})"
        if old_mode is not None
        else f"New executable file (mode {octal})"
    )
    return make(
        EXECUTABLE,
        title + (", a bin target" if is_bin else ""),
        path=path,
        key=f"{path}:{octal}",
        severity=Severity.LOW if is_bin else Severity.MEDIUM,
    )
