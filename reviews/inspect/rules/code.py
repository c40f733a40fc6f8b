"""Rules over parsed JavaScript and TypeScript: what the code can do to the machine it runs on.

Each rule starts from the pre-filter's anchors (`prefilter.find_anchors`) and asks the syntax
tree what the token is: an import or a call, a string or an identifier, code or a comment. A
`CodeFile` holds one parsed file and the facts several rules share (what it imports and how it
names it, where secrets come from, where data leaves); `code_findings()` runs every rule.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property

from reviews.inspect.rules import syntax
from reviews.inspect.rules.findings import Finding, RuleInfo, Severity, make, rule
from reviews.inspect.rules.prefilter import TOKEN_NAME, Anchor, Anchors, Kind
from reviews.inspect.rules.syntax import Node

__all__ = ["CodeFile", "code_findings", "download_and_run", "script_findings"]

CHILD_PROCESS = rule(
    "code.child-process",
    Severity.HIGH,
    "Imports child_process, and each call that runs a program through it.",
)
NETWORK = rule(
    "code.network",
    Severity.MEDIUM,
    "Network access: http, https, http2, net, tls, dgram or dns imported; fetch, "
    "XMLHttpRequest, WebSocket or sendBeacon used.",
)
ENV_ALL = rule(
    "code.env-all",
    Severity.HIGH,
    "Reads the whole environment (JSON.stringify, Object.keys/entries/values, for-in over "
    "process.env); lower when it is only spread or passed on.",
)
ENV_TOKEN = rule(
    "code.env-token",
    Severity.MEDIUM,
    "Reads an environment variable whose name looks like a credential (NPM_TOKEN, "
    "AWS_SECRET_ACCESS_KEY, ...).",
)
CREDENTIAL_FILE = rule(
    "code.credential-file",
    Severity.HIGH,
    "Names a credential file or profile: .npmrc, .ssh, .aws, .config/gh, .git-credentials, "
    "browser and wallet profiles.",
)
HOME_JOIN = rule(
    "code.home-path",
    Severity.LOW,
    "Builds a path in the user's home directory (os.homedir() joined with something).",
)
DYNAMIC_CODE = rule(
    "code.dynamic-code",
    Severity.HIGH,
    "Runs code built at run time: eval, new Function, vm, module._compile, new "
    "module.constructor, setTimeout with a string.",
)
COMPUTED_REQUIRE = rule(
    "code.computed-require",
    Severity.MEDIUM,
    "require() or import() of a module whose name is computed, so no reader can see what loads.",
)
PERSISTENCE = rule(
    "code.persistence",
    Severity.HIGH,
    "Names a start-up or persistence place: shell profiles, crontab, .github/workflows, "
    "systemd, LaunchAgents, the Windows Run key, git hooks.",
)
DESTRUCTIVE = rule(
    "code.destructive",
    Severity.HIGH,
    "Recursive deletes, `rm -rf` in strings, and writes to files found by walking directories.",
)
EXFILTRATION = rule(
    "code.exfiltration",
    Severity.CRITICAL,
    "A source of secrets (credential-like environment variables, the whole environment, "
    "credential files) and a network sink in the same file.",
)
DOWNLOAD_RUN = rule(
    "code.download-and-run",
    Severity.HIGH,
    "A command that downloads and runs a program (curl or wget piped to a shell, "
    "PowerShell download cradles, certutil).",
)
HARDCODED_IP = rule(
    "code.hardcoded-ip",
    Severity.MEDIUM,
    "A public IP address in a string.",
)
HARDCODED_URL = rule(
    "code.hardcoded-url",
    Severity.INFO,
    "A URL in a string (shown so that new ones can be read; never raises the risk).",
)

MAX_PER_RULE = 20
"""Findings of one rule in one file; past it the rule says how many more there were."""
MAX_NAME_HITS = 500
EXEC_FUNCTIONS = frozenset(
    {"exec", "execSync", "execFile", "execFileSync", "spawn", "spawnSync", "fork"}
)
VM_FUNCTIONS = frozenset(
    {
        "runInNewContext",
        "runInThisContext",
        "runInContext",
        "Script",
        "compileFunction",
        "SourceTextModule",
        "createContext",
    }
)
NETWORK_MODULES = frozenset(
    {"http", "https", "http2", "net", "tls", "dgram", "dns", "dns/promises"}
)
NETWORK_GLOBALS = frozenset({"fetch", "XMLHttpRequest", "WebSocket", "sendBeacon"})
WRITE_FUNCTIONS = frozenset(
    {
        "writeFile",
        "writeFileSync",
        "appendFile",
        "appendFileSync",
        "createWriteStream",
        "unlink",
        "unlinkSync",
        "copyFile",
        "copyFileSync",
        "truncate",
        "truncateSync",
    }
)
DELETE_FUNCTIONS = frozenset({"rm", "rmSync", "rmdir", "rmdirSync", "rimraf", "sync"})
_TOKEN_NAME = re.compile(TOKEN_NAME, re.IGNORECASE)
# Tokens that name a credential only in a path-like string (they are ordinary words too).
_WEAK_CREDENTIAL = (
    "Login Data",
    "Local Storage",
    "Local State",
    "Cookies",
    "keystore",
    "Exodus",
    "Electrum",
    "MetaMask",
    "Google/Chrome",
    "Google\\\\Chrome",
    "BraveSoftware",
    "Mozilla/Firefox",
)
_WEAK_PERSISTENCE = ("systemd", "Startup", "autostart", ".profile")
_DOWNLOAD_TOOL = re.compile(
    r"\b(?:curl|wget|certutil(?:\.exe)?\s+-urlcache|Invoke-WebRequest|iwr|DownloadString|"
    r"DownloadFile|Start-BitsTransfer|bitsadmin)\b",
    re.IGNORECASE,
)
_RUNS = re.compile(
    r"\|\s*(?:ba|z|da)?sh\b|\|\s*node\b|\|\s*python|\bchmod\s+(?:\+x|[0-7]*7[0-7]*)\b|"
    r"\b(?:iex|Invoke-Expression)\b|&&\s*\./|;\s*\./|\bsh\s+-c\b|\bbash\s+-c\b|"
    r"\bstart\s+/b\b|\.exe\b",
    re.IGNORECASE,
)
_IPV4 = re.compile(rb"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w.])")
# Every ASCII digit becomes "0", a dot stays, anything else is a space: "0.0" is where an
# address may have its first dot, found at memchr speed instead of trying the pattern at
# every byte (a regular expression without a literal start reads code at ~40 MB/s).
_DIGIT_DOT = bytes(
    ord("0") if chr(byte).isdigit() and byte < 128 else ord(".") if byte == ord(".") else 32
    for byte in range(256)
)
_ADDRESS_SHAPE = re.compile(rb"0\.0{1,3}\.0{1,3}\.0")
_URL = re.compile(r"(?:https?|wss?)://[^\s'\"`<>()\\]{1,300}")
_ROOTISH = re.compile(r"""^(?:/|\.\./|\.\.$|~|[A-Za-z]:\\|\$HOME|%USERPROFILE%)""")


def download_and_run(command: str) -> Severity | None:
    """HIGH for a command that downloads and runs something; MEDIUM for a download from a URL
    alone, or code given to node on its command line; None for anything else."""
    if not _DOWNLOAD_TOOL.search(command):
        if re.search(r"\bnode\s+(?:-e|--eval|-p|--print)\b", command):
            return Severity.MEDIUM
        return None
    if _RUNS.search(command):
        return Severity.HIGH
    return Severity.MEDIUM if re.search(r"(?:https?|ftp)://", command) else None


SCRIPT_SUFFIXES = (".sh", ".bash", ".zsh", ".ps1", ".psm1", ".bat", ".cmd", ".command")


def script_findings(path: str, data: bytes, anchors: list[Anchor]) -> list[Finding]:
    """Download-and-run lines in shell, PowerShell and batch scripts (no parser: by line)."""
    if not path.lower().endswith(SCRIPT_SUFFIXES):
        return []
    findings: list[Finding] = []
    seen: set[int] = set()
    for anchor in anchors:
        where = syntax.place(data, anchor.start)
        if where.line in seen:
            continue
        seen.add(where.line)
        start = data.rfind(b"\n", 0, anchor.start) + 1
        end = data.find(b"\n", anchor.start)
        line = data[start : end if end >= 0 else len(data)].decode("utf-8", "replace")
        severity = download_and_run(line)
        if severity is None or line.lstrip().startswith(("#", "REM ", "::")):
            continue
        title = "Downloads and runs a program" if severity is Severity.HIGH else "Downloads"
        findings.append(
            make(
                DOWNLOAD_RUN,
                title,
                path=path,
                line=where.line,
                column=1,
                excerpt=line,
                key=line,
                severity=severity,
            )
        )
        if len(findings) >= MAX_PER_RULE:
            break
    return findings


def token_like(name: str) -> bool:
    """An environment variable name that looks like it holds a credential."""
    return bool(_TOKEN_NAME.search(name))


@dataclass(frozen=True, slots=True)
class Site:
    """A place in the file, for the exfiltration shape and for titles."""

    offset: int
    label: str
    node: Node


@dataclass
class ModuleUse:
    """One import of an interesting module: where, and the names the file gives it."""

    module: str
    site: Node
    namespaces: set[str] = field(default_factory=set)
    functions: dict[str, str] = field(default_factory=dict)
    """Local name -> exported name, for destructured or named imports."""


@dataclass
class CodeFile:
    path: str
    data: bytes
    root: Node
    anchors: Anchors
    sources: list[Site] = field(default_factory=list)
    sinks: list[Site] = field(default_factory=list)

    def node(self, anchor: Anchor) -> Node:
        return self.root.named_descendant_for_byte_range(anchor.start, anchor.end) or self.root

    def finding(
        self,
        info: RuleInfo,
        title: str,
        node: Node,
        *,
        key: str | None = None,
        severity: Severity | None = None,
    ) -> Finding:
        where = syntax.place(self.data, node.start_byte)
        return make(
            info,
            title,
            path=self.path,
            line=where.line,
            column=where.column,
            excerpt=where.excerpt,
            key=key if key is not None else syntax.text(node, 300),
            severity=severity,
        )

    @cached_property
    def imports(self) -> list[ModuleUse]:
        uses: list[ModuleUse] = []
        for anchor in self.anchors.of(Kind.IMPORT):
            use = _module_use(self.node(anchor), anchor.detail)
            if use is not None:
                uses.append(use)
        return uses

    def calls_of(self, use: ModuleUse, names: frozenset[str] | None) -> Iterator[Node]:
        """Calls made through an import: `cp.exec(...)`, `exec(...)` after destructuring,
        `require('child_process').exec(...)`. `names` limits which functions count."""
        direct = _direct_member_call(use.site)
        if direct is not None and (names is None or syntax.call_name(direct)[1] in names):
            yield direct
        for local, exported in use.functions.items():
            if names is None or exported in names:
                yield from self._calls_named(local, member_of=None)
        for namespace in use.namespaces:
            yield from self._calls_named(namespace, member_of=names, namespace=True)

    def _calls_named(
        self, name: str, member_of: frozenset[str] | None, *, namespace: bool = False
    ) -> Iterator[Node]:
        needle = name.encode()
        start, hits = 0, 0
        while hits < MAX_NAME_HITS:
            at = self.data.find(needle, start)
            if at < 0:
                return
            start = at + len(needle)
            node = self.root.named_descendant_for_byte_range(at, at + len(needle))
            if node is None or node.type != "identifier" or syntax.text(node, 200) != name:
                continue
            hits += 1
            if namespace:
                member = node.parent
                if member is None or member.type != "member_expression":
                    continue
                if member.child_by_field_name("object") != node:
                    continue
                prop = member.child_by_field_name("property")
                if prop is None or (member_of is not None and syntax.text(prop) not in member_of):
                    continue
                call = member.parent
                if call is not None and call.type in ("call_expression", "new_expression"):
                    callee = call.child_by_field_name("function") or call.child_by_field_name(
                        "constructor"
                    )
                    if callee == member:
                        yield call
            else:
                call = node.parent
                if (
                    call is not None
                    and call.type == "call_expression"
                    and call.child_by_field_name("function") == node
                ):
                    yield call


def code_findings(file: CodeFile) -> list[Finding]:
    """Every code rule on one parsed file (the exfiltration shape last: it needs the others)."""
    findings: list[Finding] = []
    for check in _CHECKS:
        findings.extend(_capped(check(file)))
    findings.extend(_exfiltration(file))
    return findings


def _capped(findings: Iterator[Finding]) -> list[Finding]:
    kept: list[Finding] = []
    extra = 0
    for finding in findings:
        if len(kept) < MAX_PER_RULE:
            kept.append(finding)
        else:
            extra += 1
    if extra and kept:
        last = kept[-1]
        kept[-1] = replace(last, title=f"{last.title} (and {extra:,} more like it in this file)")
    return kept


# -- Imports and processes --------------------------------------------------------------------


def _module_use(node: Node, module: str) -> ModuleUse | None:
    """The import at `node` (a require/import call or an import statement), if it is real code
    importing `module`; with the names it binds."""
    if syntax.in_comment(node) or node.type in ("string", "string_fragment", "template_string"):
        return None
    if node.type == "call_expression":
        args = syntax.arguments_of(node)
        if not args or (syntax.string_value(args[0]) or "").removeprefix("node:") != module:
            return None
        _obj, name = syntax.call_name(node)
        callee = node.child_by_field_name("function")
        if name != "require" and (callee is None or callee.type != "import"):
            return None
        use = ModuleUse(module, node)
        _bind_require(use, node)
        return use
    statement = syntax.enclosing(node, {"import_statement", "export_statement"})
    if statement is None:
        return None
    source = statement.child_by_field_name("source")
    if source is None or (syntax.string_value(source) or "").removeprefix("node:") != module:
        return None
    use = ModuleUse(module, statement)
    _bind_import(use, statement)
    return use


def _bind_require(use: ModuleUse, call: Node) -> None:
    parent = call.parent
    if parent is not None and parent.type == "await_expression":
        parent = parent.parent
    if parent is None or parent.type not in ("variable_declarator", "assignment_expression"):
        return
    target = parent.child_by_field_name("name") or parent.child_by_field_name("left")
    if target is None:
        return
    if target.type == "identifier":
        use.namespaces.add(syntax.text(target, 200))
    elif target.type == "object_pattern":
        for child in target.named_children:
            if child.type == "shorthand_property_identifier_pattern":
                name = syntax.text(child, 200)
                use.functions[name] = name
            elif child.type == "pair_pattern":
                key = child.child_by_field_name("key")
                value = child.child_by_field_name("value")
                if key is not None and value is not None and value.type == "identifier":
                    use.functions[syntax.text(value, 200)] = syntax.text(key, 200)


def _bind_import(use: ModuleUse, statement: Node) -> None:
    for clause in statement.named_children:
        if clause.type != "import_clause":
            continue
        for part in clause.named_children:
            if part.type == "identifier":
                use.namespaces.add(syntax.text(part, 200))
            elif part.type == "namespace_import":
                for name in part.named_children:
                    if name.type == "identifier":
                        use.namespaces.add(syntax.text(name, 200))
            elif part.type == "named_imports":
                for spec in part.named_children:
                    if spec.type != "import_specifier":
                        continue
                    exported = spec.child_by_field_name("name")
                    alias = spec.child_by_field_name("alias") or exported
                    if exported is not None and alias is not None:
                        use.functions[syntax.text(alias, 200)] = syntax.text(exported, 200)


def _direct_member_call(site: Node) -> Node | None:
    """`require('x').fn(...)`: the call made on the import itself."""
    member = site.parent
    if member is None or member.type != "member_expression":
        return None
    call = member.parent
    if (
        call is not None
        and call.type == "call_expression"
        and call.child_by_field_name("function") == member
    ):
        return call
    return None


def _child_process(file: CodeFile) -> Iterator[Finding]:
    for use in file.imports:
        if use.module != "child_process":
            continue
        yield file.finding(CHILD_PROCESS, "Imports child_process: can run any program", use.site)
        for call in file.calls_of(use, EXEC_FUNCTIONS):
            _obj, name = syntax.call_name(call)
            args = syntax.arguments_of(call)
            command = syntax.text(args[0], 120) if args else ""
            _record_command_sink(file, call, args)
            yield file.finding(CHILD_PROCESS, f"Runs a program: {name}({command})", call)


def _record_command_sink(file: CodeFile, call: Node, args: list[Node]) -> None:
    """A program run with a downloader in its command line sends data out too."""
    if args:
        value = syntax.string_value(args[0]) or syntax.text(args[0], 500)
        if _DOWNLOAD_TOOL.search(value):
            file.sinks.append(Site(call.start_byte, "a download command", call))


def _network(file: CodeFile) -> Iterator[Finding]:
    for use in file.imports:
        if use.module not in NETWORK_MODULES:
            continue
        yield file.finding(NETWORK, f"Imports {use.module}: network access", use.site)
        calls = list(file.calls_of(use, None))
        for call in calls:
            obj, name = syntax.call_name(call)
            label = f"{use.module} ({obj[:30]}.{name})" if obj else f"{use.module} ({name})"
            file.sinks.append(Site(call.start_byte, label, call))
        if not calls:
            file.sinks.append(Site(use.site.start_byte, use.module, use.site))
    for anchor in file.anchors.of(Kind.NETWORK_GLOBAL):
        node = file.node(anchor)
        name = file.data[anchor.start : anchor.end].decode()
        use_node = _global_use(node, name)
        if use_node is None:
            continue
        file.sinks.append(Site(use_node.start_byte, name, use_node))
        yield file.finding(NETWORK, f"Uses {name}: network access", use_node)


def _global_use(node: Node, name: str) -> Node | None:
    """The call or `new` using a global like fetch or WebSocket at `node`, if there is one."""
    if node.type not in ("identifier", "property_identifier"):
        return None
    if syntax.text(node, 100) != name:
        return None
    target = node
    if node.type == "property_identifier":
        member = node.parent
        if member is None or member.type != "member_expression":
            return None
        target = member
    parent = target.parent
    if parent is None:
        return None
    callee = parent.child_by_field_name("function") or parent.child_by_field_name("constructor")
    if parent.type in ("call_expression", "new_expression") and callee == target:
        return parent
    return None


# -- Environment, credentials, home ----------------------------------------------------------


def _environment(file: CodeFile) -> Iterator[Finding]:
    for anchor in file.anchors.of(Kind.ENV):
        node = file.node(anchor)
        env = _env_node(node)
        if env is None:
            continue
        yield from _env_use(file, env)


def _env_node(node: Node) -> Node | None:
    """The `process.env` (or `process["env"]`) expression at or above `node`."""
    for candidate in (node, *syntax.ancestors(node, 2)):
        if candidate.type not in ("member_expression", "subscript_expression"):
            continue
        obj, prop = syntax.member_parts(candidate)
        if obj == "process" and prop == "env":
            return candidate
    return None


def _env_use(file: CodeFile, env: Node) -> Iterator[Finding]:
    parent = env.parent
    if parent is None:
        return
    if parent.type in ("member_expression", "subscript_expression"):
        if parent.child_by_field_name("object") != env:
            return
        _obj, name = syntax.member_parts(parent)
        if name and token_like(name):
            file.sources.append(Site(parent.start_byte, name, parent))
            yield file.finding(ENV_TOKEN, f"Reads {name} from the environment", parent)
        return
    if parent.type == "variable_declarator" and parent.child_by_field_name("value") == env:
        pattern = parent.child_by_field_name("name")
        if pattern is not None and pattern.type == "object_pattern":
            for name in _pattern_names(pattern):
                if token_like(name):
                    file.sources.append(Site(parent.start_byte, name, parent))
                    yield file.finding(ENV_TOKEN, f"Reads {name} from the environment", parent)
            return
    severity, verb = _whole_env_use(env)
    if severity is None:
        return
    file.sources.append(Site(env.start_byte, "the whole environment", env))
    context = env.parent if env.parent is not None else env
    yield file.finding(ENV_ALL, verb, context, severity=severity)


def _pattern_names(pattern: Node) -> Iterator[str]:
    for child in pattern.named_children:
        if child.type == "shorthand_property_identifier_pattern":
            yield syntax.text(child, 200)
        elif child.type == "pair_pattern":
            key = child.child_by_field_name("key")
            if key is not None:
                yield syntax.string_value(key) or syntax.text(key, 200)


_COLLECTORS = {"stringify", "keys", "entries", "values", "getOwnPropertyNames"}


def _whole_env_use(env: Node) -> tuple[Severity | None, str]:
    parent = env.parent
    assert parent is not None
    if parent.type == "for_in_statement":
        return Severity.HIGH, "Walks through every environment variable"
    if parent.type == "arguments":
        call = parent.parent
        if call is not None and call.type == "call_expression":
            _obj, name = syntax.call_name(call)
            if name in _COLLECTORS:
                return Severity.HIGH, f"Collects the whole environment ({name})"
            return Severity.LOW, f"Passes the whole environment to {name or 'a function'}"
    if parent.type == "spread_element":
        holder = parent.parent.parent if parent.parent is not None else None
        if holder is not None and holder.type == "pair" and _pair_key(holder) == "env":
            return None, ""  # `{ env: { ...process.env, X } }`: a child's environment
        return Severity.LOW, "Copies the whole environment"
    if parent.type == "pair" and _pair_key(parent) == "env":
        return None, ""
    if parent.type in ("variable_declarator", "assignment_expression"):
        return Severity.LOW, "Keeps the whole environment in a variable"
    return None, ""


def _pair_key(pair: Node) -> str:
    key = pair.child_by_field_name("key")
    if key is None:
        return ""
    return syntax.string_value(key) or syntax.text(key, 100)


def _credentials(file: CodeFile) -> Iterator[Finding]:
    has_home = bool(file.anchors.of(Kind.HOMEDIR))
    for anchor in file.anchors.of(Kind.CREDENTIAL_PATH, Kind.CREDENTIAL_WORD):
        node = file.node(anchor)
        string = _string_at(node)
        if string is None:
            continue
        token = file.data[anchor.start : anchor.end].decode("utf-8", "replace")
        value = syntax.string_value(string) or syntax.text(string, 300)
        if token in _WEAK_CREDENTIAL and not (has_home or "/" in value or "\\" in value):
            continue
        file.sources.append(Site(string.start_byte, token, string))
        yield file.finding(CREDENTIAL_FILE, f"Names a credential location: {token}", string)
    for anchor in file.anchors.of(Kind.HOMEDIR):
        node = file.node(anchor)
        if node.type not in ("identifier", "property_identifier"):
            continue
        if syntax.text(node, 50) != "homedir":
            continue
        call = syntax.enclosing(node, {"call_expression"})
        outer = syntax.call_with_argument(call) if call is not None else None
        if outer is None:
            continue
        _obj, name = syntax.call_name(outer)
        if name in ("join", "resolve"):
            yield file.finding(HOME_JOIN, "Builds a path in the home directory", outer)


def _string_at(node: Node) -> Node | None:
    if syntax.in_comment(node):
        return None
    return syntax.enclosing_string(node) if node.type != "program" else None


# -- Dynamic code -----------------------------------------------------------------------------


def _dynamic_code(file: CodeFile) -> Iterator[Finding]:
    for anchor in file.anchors.of(Kind.EVAL):
        node = file.node(anchor)
        found = _eval_use(node)
        if found is not None:
            yield file.finding(DYNAMIC_CODE, found[1], found[0])
    for anchor in file.anchors.of(Kind.FUNCTION):
        node = file.node(anchor)
        if node.type != "identifier" or syntax.text(node, 20) != "Function":
            continue
        parent = node.parent
        if parent is None or parent.type not in ("call_expression", "new_expression"):
            continue
        callee = parent.child_by_field_name("function") or parent.child_by_field_name("constructor")
        if callee == node:
            yield file.finding(DYNAMIC_CODE, "Builds a function from text (Function)", parent)
    for anchor in file.anchors.of(Kind.COMPILE):
        node = file.node(anchor)
        if syntax.in_comment(node) or syntax.enclosing_string(node) is not None:
            continue
        member = syntax.enclosing(node, {"member_expression"})
        if member is None:
            continue
        obj, prop = syntax.member_parts(member)
        if prop == "_compile":
            yield file.finding(DYNAMIC_CODE, "Compiles text as a module (_compile)", member)
        elif obj == "module" and prop == "constructor":
            yield file.finding(DYNAMIC_CODE, "Makes a new module to load code into", member)
    for anchor in file.anchors.of(Kind.TIMER_STRING):
        node = file.node(anchor)
        call = syntax.enclosing(node, {"call_expression"})
        if call is None:
            continue
        args = syntax.arguments_of(call)
        if args and syntax.is_string(args[0]):
            yield file.finding(DYNAMIC_CODE, "Runs a string as code (timer)", call)
    for use in file.imports:
        if use.module != "vm":
            continue
        yield file.finding(DYNAMIC_CODE, "Imports vm: runs code built at run time", use.site)
        for call in file.calls_of(use, VM_FUNCTIONS):
            yield file.finding(DYNAMIC_CODE, f"Runs code with vm.{syntax.call_name(call)[1]}", call)
    for anchor in file.anchors.of(Kind.COMPUTED_REQUIRE):
        call = file.node(anchor)
        if call.type != "call_expression":
            continue
        args = syntax.arguments_of(call)
        if not args or syntax.string_value(args[0]) is not None:
            continue
        _obj, name = syntax.call_name(call)
        callee = call.child_by_field_name("function")
        if name == "require" or (callee is not None and callee.type == "import"):
            yield file.finding(
                COMPUTED_REQUIRE, f"Loads a module whose name is computed: {name or 'import'}", call
            )


def _eval_use(node: Node) -> tuple[Node, str] | None:
    if node.type == "identifier" and syntax.text(node, 10) == "eval":
        parent = node.parent
        if parent is None:
            return None
        if parent.type == "call_expression" and parent.child_by_field_name("function") == node:
            return parent, "Evaluates text as code (eval)"
        if parent.type in ("variable_declarator", "assignment_expression", "sequence_expression"):
            return parent, "Takes hold of eval (indirect eval)"
        return None
    if node.type == "property_identifier" and syntax.text(node, 10) == "eval":
        member = node.parent
        call = member.parent if member is not None else None
        if (
            call is not None
            and call.type == "call_expression"
            and call.child_by_field_name("function") == member
        ):
            return call, "Evaluates text as code (eval)"
    return None


# -- Persistence and destruction --------------------------------------------------------------


def _persistence(file: CodeFile) -> Iterator[Finding]:
    writes = bool(file.anchors.of(Kind.WRITE)) or any(
        use.module == "child_process" for use in file.imports
    )
    for anchor in file.anchors.of(Kind.PERSISTENCE_PATH, Kind.PERSISTENCE_WORD):
        string = _string_at(file.node(anchor))
        if string is None:
            continue
        token = file.data[anchor.start : anchor.end].decode("utf-8", "replace")
        value = syntax.string_value(string) or syntax.text(string, 300)
        if token in _WEAK_PERSISTENCE and "/" not in value and "\\" not in value:
            continue
        yield file.finding(
            PERSISTENCE,
            f"Names a start-up or persistence place: {token}",
            string,
            severity=Severity.HIGH if writes else Severity.MEDIUM,
        )


def _destructive(file: CodeFile) -> Iterator[Finding]:
    for anchor in file.anchors.of(Kind.DESTRUCTIVE):
        node = file.node(anchor)
        string = _string_at(node)
        if string is not None:
            value = syntax.string_value(string) or syntax.text(string, 300)
            if re.search(r"\b(?:rm\s+-(?:rf|fr)|del\s+/s)\b", value):
                root = re.search(r"(?:\s/(?:\s|\*|$)|~|\$HOME|%USERPROFILE%|\s\*)", value)
                yield file.finding(
                    DESTRUCTIVE,
                    "A recursive delete command",
                    string,
                    severity=Severity.HIGH if root else Severity.MEDIUM,
                )
            continue
        call = syntax.enclosing(node, {"call_expression"})
        if call is None:
            continue
        _obj, name = syntax.call_name(call)
        if name not in DELETE_FUNCTIONS or (name == "sync" and "rimraf" not in _obj):
            continue
        args = syntax.arguments_of(call)
        if name in ("rm", "rmSync", "rmdir", "rmdirSync") and not _recursive(args):
            continue
        target = args[0] if args else None
        rootish = target is not None and _rootish(target)
        yield file.finding(
            DESTRUCTIVE,
            f"Deletes recursively: {name}({syntax.text(target, 60) if target else ''})",
            call,
            severity=Severity.HIGH if rootish else Severity.MEDIUM,
        )
    yield from _walk_and_write(file)


def _recursive(args: list[Node]) -> bool:
    for arg in args[1:]:
        if arg.type == "object":
            for pair in arg.named_children:
                if pair.type == "pair" and _pair_key(pair) == "recursive":
                    value = pair.child_by_field_name("value")
                    return value is not None and syntax.text(value, 10) == "true"
    return False


def _rootish(node: Node) -> bool:
    value = syntax.string_value(node)
    if value is not None:
        return bool(_ROOTISH.match(value))
    return "homedir" in syntax.text(node, 200)


def _walk_and_write(file: CodeFile) -> Iterator[Finding]:
    """Writes or deletes with a computed path, in a file that walks directories: what
    wipers and overwriting protestware do."""
    walks = [
        anchor
        for anchor in file.anchors.of(Kind.WALK)
        if syntax.enclosing(file.node(anchor), {"call_expression"}) is not None
        and not syntax.in_comment(file.node(anchor))
    ]
    if not walks:
        return
    suspicious = bool(
        file.anchors.of(Kind.DECODER) or file.sinks or file.anchors.of(Kind.NETWORK_GLOBAL)
    ) or any(use.module in NETWORK_MODULES for use in file.imports)
    for anchor in file.anchors.of(Kind.WRITE):
        node = file.node(anchor)
        if node.type not in ("identifier", "property_identifier"):
            continue
        call = syntax.enclosing(node, {"call_expression"})
        if call is None:
            continue
        _obj, name = syntax.call_name(call)
        if name not in WRITE_FUNCTIONS:
            continue
        args = syntax.arguments_of(call)
        if not args or syntax.string_value(args[0]) is not None:
            continue
        yield file.finding(
            DESTRUCTIVE,
            f"Writes to files it finds by walking directories: {name}",
            call,
            severity=Severity.HIGH if suspicious else Severity.MEDIUM,
        )


# -- Commands, addresses ----------------------------------------------------------------------


def _download_commands(file: CodeFile) -> Iterator[Finding]:
    seen: set[int] = set()
    for anchor in file.anchors.of(Kind.DOWNLOAD):
        string = _string_at(file.node(anchor))
        if string is None or string.start_byte in seen:
            continue
        seen.add(string.start_byte)
        value = syntax.string_value(string) or syntax.text(string, 2000)
        severity = download_and_run(value)
        if severity is None:
            continue
        file.sinks.append(Site(string.start_byte, "a download command", string))
        title = "Downloads and runs a program" if severity is Severity.HIGH else "Downloads"
        yield file.finding(DOWNLOAD_RUN, title, string, severity=severity)


def _addresses(file: CodeFile) -> Iterator[Finding]:
    seen: set[str] = set()
    for anchor in file.anchors.of(Kind.URL):
        string = _string_at(file.node(anchor))
        if string is None:
            continue
        value = syntax.string_value(string) or ""
        for match in _URL.finditer(value):
            url = match.group().rstrip(".,;:")
            if url in seen:
                continue
            seen.add(url)
            yield file.finding(HARDCODED_URL, f"URL {url[:120]}", string, key=url)
    if not file.sinks:  # an address matters where the file can connect to it
        return
    for ip in ipv4_matches(file.data):
        if not _public_ip(ip):
            continue
        node = file.root.named_descendant_for_byte_range(ip.start(), ip.end())
        if node is None or _string_at(node) is None:
            continue
        address = ip.group().decode()
        if address in seen:
            continue
        seen.add(address)
        yield file.finding(HARDCODED_IP, f"IP address {address}", node, key=address)


def ipv4_matches(data: bytes) -> Iterator[re.Match[bytes]]:
    """The matches `_IPV4.finditer(data)` gives, in order. A match cannot start right after a
    digit or a dot, so matches never overlap, and each one is found by trying the pattern at
    the (at most three) starts of its first octet, once the digits-and-dots shape is seen."""
    last_end = 0
    for shape in _ADDRESS_SHAPE.finditer(data.translate(_DIGIT_DOT)):
        at = shape.start()  # the last digit of the first octet
        for start in range(max(at - 2, last_end), at + 1):
            match = _IPV4.match(data, start)
            if match is not None:
                last_end = match.end()
                yield match
                break


def _public_ip(match: re.Match[bytes]) -> bool:
    try:
        address = ipaddress.IPv4Address(match.group().decode())
    except ValueError:
        return False
    return address.is_global and not str(address).startswith("255.")


# -- The exfiltration shape -------------------------------------------------------------------


def _exfiltration(file: CodeFile) -> list[Finding]:
    if not file.sources or not file.sinks:
        return []
    source = min(file.sources, key=lambda site: site.offset)
    sink = min(file.sinks, key=lambda site: site.offset)
    source_at = syntax.place(file.data, source.offset)
    sink_at = syntax.place(file.data, sink.offset)
    key = f"{syntax.text(source.node, 200)}|{syntax.text(sink.node, 200)}"
    return [
        file.finding(
            EXFILTRATION,
            f"Reads {source.label} (line {source_at.line}) and sends data out through "
            f"{sink.label} (line {sink_at.line}) in the same file",
            sink.node,
            key=key,
        )
    ]


_CHECKS: tuple[Callable[[CodeFile], Iterator[Finding]], ...] = (
    _child_process,
    _network,
    _environment,
    _credentials,
    _dynamic_code,
    _persistence,
    _download_commands,
    _destructive,
    _addresses,
)
