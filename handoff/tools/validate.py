"""``python -m handoff.tools.validate``: check handoff_rules.yml against the domain, the rules and the code.

Tells a conversation designer at once, naming the file and line, when

- a trigger names an intent or a response the domain does not have;
- a response a trigger, an offer, a follow-up or a form says (``response``, ``offer_response``,
  ``confirm_response``, every ``"utter_..."`` the actions and the Rasa server plugins say, each
  form's ``utter_ask_<slot>``) is missing, or lacks the English default (no condition) or the Dutch
  variant (a condition on slot ``language`` = ``nl``);
- a trigger's ``mode`` is not what happens: an ``immediate`` trigger's intent needs a rule
  ``intent: X`` → ``action: action_handoff``, an ``offer`` trigger's ``action_offer_handoff`` (in
  ``data/rules/``), no rule may send it to the other one, and the triggers the actions start
  themselves (bot_failure, qualified_lead, frustration, repeat_contact, timeout) must have the mode
  the code carries out;
- an escalation intent list names an intent the domain does not have, or does not fit the modes:
  the ``or`` lists of the rules on the ``escalation`` slot (``data/rules/escalation.yml``), the
  intent constants of the actions and server plugins (``NOT_A_TOPIC``, ``*_INTENTS``, ...), the
  ``frustration`` intents of handoff_rules.yml and the slot mappings' ``intent``/``not_intent``;
- a trigger's queue has no business hours (``queues:``), or a queue's texts lack a language or use
  an unknown placeholder.

Every problem is listed, not just the first; the exit code is 1 when there is any.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from handoff.hours import PLACEHOLDERS, placeholders
from handoff.settings import PROJECT_ROOT
from handoff.triggers import HandoffRules, RulesError, load_rules, rules_path

# Responses the actions and the helpdesk channel say; the domain must define each.
REQUIRED_RESPONSES = (
    "utter_handoff_started",
    "utter_handoff_wait_minutes",
    "utter_handoff_wait_short",
    "utter_handoff_delayed",
    "utter_handoff_failed",
    "utter_handoff_agent_joined",
    "utter_handoff_back",
    "utter_rephrase",
)
REQUIRED_INTENTS = ("EXTERNAL_handback",)
# Languages every queue's customer-facing texts (queues: name, closed_text) must have.
QUEUE_LANGUAGES = ("en", "nl")
# The Dutch variant of a response has this slot condition; the English one has none.
LANGUAGE_SLOT, DUTCH = "language", "nl"
# Intents Rasa adds to every domain (rasa.shared.core.constants.DEFAULT_INTENTS).
RASA_DEFAULT_INTENTS = ("restart", "back", "out_of_scope", "session_start", "nlu_fallback")

# The action that starts a trigger of each mode, after the trigger's intent in a rule.
HANDOFF_ACTION, OFFER_ACTION = "action_handoff", "action_offer_handoff"
MODE_ACTIONS = {"immediate": HANDOFF_ACTION, "offer": OFFER_ACTION}
# Triggers the actions start themselves, the mode the code carries out, and where.
CODE_MODES = {
    "bot_failure": ("immediate", "action_handle_fallback hands off after two misunderstandings in a row"),
    "qualified_lead": ("immediate", "action_submit_lead hands a qualified lead off"),
    "frustration": ("offer", "action_assess_turn offers a person below frustration.handoff"),
    "repeat_contact": ("offer", "action_assess_turn offers a person to a repeat contact"),
    "timeout": ("offer", "action_assess_turn offers a person when a conversation drags on"),
}
# The rules on the `escalation` slot (action_assess_turn) and the action each must run.
ESCALATION_SLOT = "escalation"
ESCALATION_ACTIONS = {"handoff": HANDOFF_ACTION, "offer": OFFER_ACTION, "confirm": OFFER_ACTION}

# Where the code that says responses and names intents lives, relative to the project root.
CODE_DIRS = ("actions", "handoff/server")
# "utter_..." string literals in the code that are not responses.
NOT_RESPONSES = frozenset({"utter_action"})
_RESPONSE_LITERAL = re.compile(r"""["'](utter_[a-z0-9_]+)["']""")
# Module-level constants of the code that list intents: names ending in _INTENT(S), and these.
CODE_INTENT_LISTS = frozenset({"NOT_A_TOPIC", "OFFER_ANSWERS", "NOT_AN_ANSWER"})
_INTENT_CONSTANT = re.compile(r"^[A-Z][A-Z0-9_]*_INTENTS?$")


# --- YAML with line numbers ---------------------------------------------------------------------


def compose(path: Path) -> yaml.Node | None:
    with open(path, encoding="utf-8") as handle:
        return yaml.compose(handle, Loader=yaml.SafeLoader)


def line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def entries(node: yaml.Node | None) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    """(key node, value node) pairs of a mapping node; nothing for anything else."""
    if isinstance(node, yaml.MappingNode):
        yield from node.value


def items(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def scalar(node: yaml.Node | None) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    for k, v in entries(node):
        if scalar(k) == key:
            return v
    return None


def key_node(node: yaml.Node | None, key: str) -> yaml.Node | None:
    for k, _ in entries(node):
        if scalar(k) == key:
            return k
    return None


def locate(root: yaml.Node | None, path: Iterable[str | int]) -> int:
    """The line of the deepest node along ``path`` (mapping keys, sequence indexes) that exists:
    a mapping entry's key line, a sequence item's own line."""
    found, node = 1, root
    for step in path:
        if isinstance(step, int):
            seq = items(node)
            if step >= len(seq):
                break
            node = seq[step]
            found = line(node)
        else:
            key = key_node(node, step)
            if key is None:
                break
            found, node = line(key), get(node, step)
    return found


def relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


# --- the domain ---------------------------------------------------------------------------------


@dataclass
class Response:
    where: str
    has_default: bool = False
    has_dutch: bool = False


@dataclass
class Domain:
    label: str
    intents: dict[str, str] = field(default_factory=dict)  # name -> "file:line"
    responses: dict[str, Response] = field(default_factory=dict)
    responses_line: str = ""
    # (form, slot, "file:line") of every slot a form asks for
    form_slots: list[tuple[str, str, str]] = field(default_factory=list)
    # (slot, key, intent, "file:line") of the intents the slot mappings name
    mapping_intents: list[tuple[str, str, str, str]] = field(default_factory=list)

    def knows_intent(self, intent: str) -> bool:
        return intent in self.intents or intent in RASA_DEFAULT_INTENTS


def _is_dutch(condition: yaml.Node | None) -> bool:
    return any(
        scalar(get(c, "type")) == "slot" and scalar(get(c, "name")) == LANGUAGE_SLOT and scalar(get(c, "value")) == DUTCH
        for c in items(condition)
    )


def load_domain(path: Path, root: Path = PROJECT_ROOT) -> Domain:
    """A domain file, or every YAML file of a domain directory, with where each part is."""
    files = sorted(path.rglob("*.yml")) if path.is_dir() else [path]
    domain = Domain(label=relative(path, root) + ("/" if path.is_dir() else ""))
    for file in files:
        label = relative(file, root)
        doc = compose(file)
        for item in items(get(doc, "intents")):
            name = scalar(item) or next((scalar(k) for k, _ in entries(item)), None)
            if name:
                domain.intents.setdefault(name, f"{label}:{line(item)}")
        responses_key = key_node(doc, "responses")
        if responses_key is not None and not domain.responses_line:
            domain.responses_line = f"{label}:{line(responses_key)}"
        for key, variants in entries(get(doc, "responses")):
            response = Response(where=f"{label}:{line(key)}")
            for variant in items(variants):
                condition = get(variant, "condition")
                if not items(condition):
                    response.has_default = True
                elif _is_dutch(condition):
                    response.has_dutch = True
            domain.responses[str(key.value)] = response
        for form, spec in entries(get(doc, "forms")):
            for slot in items(get(spec, "required_slots")):
                if scalar(slot):
                    domain.form_slots.append((str(form.value), str(slot.value), f"{label}:{line(slot)}"))
        seen: set[int] = set()
        for slot, spec in entries(get(doc, "slots")):
            for mapping in items(get(spec, "mappings")):
                for key in ("intent", "not_intent"):
                    names = get(mapping, key)
                    if names is None or id(names) in seen:  # an alias repeats a list: once is enough
                        continue
                    seen.add(id(names))
                    for name in items(names) or [names]:
                        if scalar(name):
                            domain.mapping_intents.append((str(slot.value), key, str(name.value), f"{label}:{line(name)}"))
    return domain


# --- the rules of data/rules --------------------------------------------------------------------


@dataclass
class Step:
    where: str
    action: str | None = None
    intents: tuple[tuple[str, str], ...] = ()  # (intent, "file:line"): one, or the `or` list


@dataclass
class Rule:
    name: str
    where: str
    steps: list[Step]
    conditioned: bool
    escalation: str | None  # the value of the `escalation` slot in its condition


def load_story_rules(directory: Path, root: Path = PROJECT_ROOT) -> list[Rule]:
    found = []
    for file in sorted(directory.rglob("*.yml")):
        label = relative(file, root)
        for rule in items(get(compose(file), "rules")):
            steps = []
            for step in items(get(rule, "steps")):
                where = f"{label}:{line(step)}"
                if scalar(get(step, "action")):
                    steps.append(Step(where, action=scalar(get(step, "action"))))
                elif scalar(get(step, "intent")):
                    steps.append(Step(where, intents=((str(scalar(get(step, "intent"))), where),)))
                elif get(step, "or") is not None:
                    listed = tuple(
                        (str(scalar(get(o, "intent"))), f"{label}:{line(o)}") for o in items(get(step, "or")) if scalar(get(o, "intent"))
                    )
                    steps.append(Step(where, intents=listed))
                else:
                    steps.append(Step(where))
            condition = get(rule, "condition")
            escalation = None
            for part in items(condition):
                for slots in items(get(part, "slot_was_set")):
                    value = get(slots, ESCALATION_SLOT)
                    if value is not None:
                        escalation = scalar(value)
            found.append(
                Rule(
                    name=str(scalar(get(rule, "rule")) or ""),
                    where=f"{label}:{line(rule)}",
                    steps=steps,
                    conditioned=bool(items(condition)),
                    escalation=escalation,
                )
            )
    return found


def actions_after(rules: list[Rule], intent: str, *, unconditioned: bool) -> list[tuple[str, str]]:
    """(action, "file:line") of each rule step that follows ``intent`` (the rule's first step when
    ``unconditioned``; any step of a rule not on the escalation slot otherwise)."""
    found = []
    for rule in rules:
        if rule.escalation is not None or (unconditioned and rule.conditioned):
            continue
        for i, step in enumerate(rule.steps[:-1]):
            if unconditioned and i > 0:
                break
            nxt = rule.steps[i + 1]
            if nxt.action and any(name == intent for name, _ in step.intents):
                found.append((nxt.action, next(w for n, w in step.intents if n == intent)))
    return found


def handed_off_at_once(rules: list[Rule]) -> set[str]:
    """Intents an unconditioned rule hands off at once (`intent: X` → `action: action_handoff`)."""
    return {
        name
        for rule in rules
        if not rule.conditioned and len(rule.steps) >= 2 and rule.steps[1].action == HANDOFF_ACTION
        for name, _ in rule.steps[0].intents
    }


# --- the code -----------------------------------------------------------------------------------


def code_files(root: Path, dirs: Iterable[str] = CODE_DIRS) -> list[Path]:
    return [file for d in dirs if (root / d).is_dir() for file in sorted((root / d).rglob("*.py"))]


def code_responses(root: Path, dirs: Iterable[str] = CODE_DIRS) -> dict[str, str]:
    """Every ``"utter_..."`` the code says, with where it first does."""
    found: dict[str, str] = {}
    for file in code_files(root, dirs):
        for number, text in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            for name in _RESPONSE_LITERAL.findall(text):
                if name not in NOT_RESPONSES:
                    found.setdefault(name, f"{relative(file, root)}:{number}")
    return found


def code_intent_lists(root: Path, dirs: Iterable[str] = CODE_DIRS) -> list[tuple[str, str, str]]:
    """(constant, intent, "file:line") of each intent a module-level intent constant names."""
    found = []
    for file in code_files(root, dirs):
        for statement in ast.parse(file.read_text(encoding="utf-8")).body:
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                targets, value = [statement.target], statement.value
            else:
                continue
            for target in targets:
                if not isinstance(target, ast.Name):
                    continue
                if target.id not in CODE_INTENT_LISTS and not _INTENT_CONSTANT.match(target.id):
                    continue
                if isinstance(value, ast.Call) and value.args:  # frozenset({...})
                    value = value.args[0]
                elements = value.elts if isinstance(value, (ast.Set, ast.List, ast.Tuple)) else [value]
                for element in elements:
                    if isinstance(element, ast.Constant) and isinstance(element.value, str):
                        found.append((target.id, element.value, f"{relative(file, root)}:{element.lineno}"))
    return found


# --- the checks ---------------------------------------------------------------------------------


def problems(
    domain_path: Path,
    rules_file: Path,
    root: Path = PROJECT_ROOT,
    rules_dir: Path | None = None,
    code_dirs: Iterable[str] = CODE_DIRS,
) -> list[str]:
    """Everything wrong, each problem starting with the file and line to fix."""
    try:
        rules = load_rules(rules_file)
    except RulesError as exc:
        return [str(exc)]
    domain = load_domain(domain_path, root)
    doc = compose(rules_file)
    label = relative(rules_file, root)

    def where(*path: str | int) -> str:
        return f"{label}:{locate(doc, path)}"

    story_rules = load_story_rules(rules_dir or root / "data" / "rules", root)
    found = trigger_problems(rules, domain, where)
    found += mode_problems(rules, story_rules, where)
    found += response_problems(rules, domain, root, code_dirs, where)
    found += escalation_problems(rules, domain, story_rules, root, code_dirs, doc, where)
    found += queue_problems(rules, where)
    for intent in REQUIRED_INTENTS:
        if intent not in domain.intents:
            found.append(f"{domain.label}: the domain has no intent {intent!r}, which the helpdesk hand-back triggers")
    return found


def trigger_problems(rules: HandoffRules, domain: Domain, where: Callable[..., str]) -> list[str]:
    """Intents and responses a trigger names that the domain lacks."""
    found = []
    for trigger in rules.triggers.values():
        for i, intent in enumerate(trigger.intents):
            if not domain.knows_intent(intent):
                found.append(
                    f"{where('triggers', trigger.name, 'intents', i)}: trigger {trigger.name!r}: intent {intent} is not an intent in {domain.label}"
                )
        for key in ("response", "offer_response", "confirm_response"):
            response = getattr(trigger, key)
            if response and response not in domain.responses:
                found.append(
                    f"{where('triggers', trigger.name, key)}: trigger {trigger.name!r}: {key} {response} is not a response in {domain.label}"
                )
    return found


def mode_problems(rules: HandoffRules, story_rules: list[Rule], where: Callable[..., str]) -> list[str]:
    """Triggers whose mode is not what the rules and the code do."""
    found = []
    for trigger in rules.triggers.values():
        expected = MODE_ACTIONS[trigger.mode]
        other = OFFER_ACTION if expected == HANDOFF_ACTION else HANDOFF_ACTION
        for i, intent in enumerate(trigger.intents):
            first = actions_after(story_rules, intent, unconditioned=True)
            if not any(action == expected for action, _ in first):
                found.append(
                    f"{where('triggers', trigger.name, 'intents', i)}: trigger {trigger.name!r} (mode {trigger.mode}): "
                    f"no rule in data/rules runs {expected} after intent {intent}"
                )
            for action, at in first:
                if action not in (expected, other):
                    found.append(
                        f"{at}: intent {intent} runs {action}, but trigger {trigger.name!r} has mode {trigger.mode} ({expected})"
                    )
            for action, at in actions_after(story_rules, intent, unconditioned=False):
                if action == other:
                    found.append(
                        f"{at}: intent {intent} runs {other}, but trigger {trigger.name!r} has mode {trigger.mode} ({expected})"
                    )
        if trigger.name in CODE_MODES:
            mode, what = CODE_MODES[trigger.name]
            if trigger.mode != mode:
                found.append(
                    f"{where('triggers', trigger.name, 'mode')}: trigger {trigger.name!r} has mode {trigger.mode}, "
                    f"but the actions treat it as {mode} ({what})"
                )
    return found


def response_problems(
    rules: HandoffRules, domain: Domain, root: Path, code_dirs: Iterable[str], where: Callable[..., str]
) -> list[str]:
    """Responses the triggers, the code and the forms say: present, in English and in Dutch."""
    found = []
    named: dict[str, str] = {}  # response -> who names it
    for trigger in rules.triggers.values():
        for key in ("response", "offer_response", "confirm_response"):
            response = getattr(trigger, key)
            if response:
                named.setdefault(response, f"{key} of trigger {trigger.name!r}")
    for response, at in code_responses(root, code_dirs).items():
        named.setdefault(response, f"said by {at}")
        if response not in domain.responses:
            found.append(f"{at}: the code says {response}, which is not a response in {domain.label}")
    for response in REQUIRED_RESPONSES:
        named.setdefault(response, "said by the handoff loop")
        if response not in domain.responses and not any(response in p for p in found):
            found.append(f"{domain.responses_line or domain.label}: the domain has no {response!r}, which the handoff loop says")
    for form, slot, at in domain.form_slots:
        asks = (f"utter_ask_{form}_{slot}", f"utter_ask_{slot}")
        response = next((name for name in asks if name in domain.responses), None)
        if response is None:
            found.append(f"{at}: form {form!r} asks for {slot}, but {domain.label} has no {asks[1]}")
        else:
            named.setdefault(response, f"asked by {form}")
    for response, who in named.items():
        variants = domain.responses.get(response)
        if variants is None:
            continue  # reported above
        if not variants.has_default:
            found.append(f"{variants.where}: response {response} ({who}) has no English variant (one without a condition)")
        if not variants.has_dutch:
            found.append(
                f"{variants.where}: response {response} ({who}) has no Dutch variant (condition: slot {LANGUAGE_SLOT} = {DUTCH})"
            )
    return found


def escalation_problems(
    rules: HandoffRules,
    domain: Domain,
    story_rules: list[Rule],
    root: Path,
    code_dirs: Iterable[str],
    doc: yaml.Node | None,
    where: Callable[..., str],
) -> list[str]:
    """The intent lists of escalation: only intents of the domain, and consistent with the modes."""
    found = []
    at_once = handed_off_at_once(story_rules)
    customer_intents = {i for i in domain.intents if not i.startswith("EXTERNAL_")}
    with_confidence = {i: t.name for t in rules.triggers.values() if t.mode == "immediate" and t.min_confidence for i in t.intents}
    for rule in story_rules:
        if rule.escalation is None:
            continue
        listed = {name for step in rule.steps for name, _ in step.intents}
        slot = f"escalation: {rule.escalation}"
        for step in rule.steps:
            for name, at in step.intents:
                if not domain.knows_intent(name):
                    found.append(f"{at}: the rule for {slot} lists {name}, which is not an intent in {domain.label}")
                elif rule.escalation in ("handoff", "offer") and name in at_once:
                    found.append(
                        f"{at}: the rule for {slot} lists {name}, which hands off at once: the signals must not change that"
                    )
                elif rule.escalation == "confirm" and name not in at_once:
                    found.append(
                        f"{at}: the rule for {slot} lists {name}, which does not hand off at once, so there is nothing to confirm"
                    )
        actions = [step.action for step in rule.steps if step.action]
        expected = ESCALATION_ACTIONS.get(rule.escalation or "")
        if expected and actions and actions[-1] != expected:
            found.append(f"{rule.where}: the rule for {slot} runs {actions[-1]}, not {expected}")
        if rule.escalation in ("handoff", "offer"):
            for name in sorted(customer_intents - at_once - listed):
                found.append(
                    f"{rule.where}: the rule for {slot} does not list {name} "
                    "(every customer intent that does not hand off at once belongs in it)"
                )
        if rule.escalation == "confirm":
            for name in sorted(set(with_confidence) - listed):
                found.append(
                    f"{rule.where}: the rule for {slot} does not list {name}, "
                    f"which trigger {with_confidence[name]!r} asks about below its min_confidence"
                )
    for constant, name, at in code_intent_lists(root, code_dirs):
        if not domain.knows_intent(name):
            found.append(f"{at}: {constant} names {name}, which is not an intent in {domain.label}")
    frustration = rules.frustration
    for key, names in (
        ("fallback_intent", [frustration.fallback_intent]),
        ("frustration_intent", [frustration.frustration_intent]),
        ("ignore_intents", sorted(frustration.ignore_intents)),
    ):
        written = [scalar(n) for n in items(get(get(doc, "frustration"), key))]
        for name in names:
            if not domain.knows_intent(name):
                path = ("frustration", key, written.index(name)) if name in written else ("frustration", key)
                found.append(f"{where(*path)}: frustration {key} names {name}, which is not an intent in {domain.label}")
    for slot, key, name, at in domain.mapping_intents:
        if not domain.knows_intent(name):
            found.append(f"{at}: slot {slot!r}: {key} names {name}, which is not an intent in {domain.label}")
    return found


def queue_problems(rules: HandoffRules, where: Callable[..., str] | None = None) -> list[str]:
    """Triggers whose queue has no business hours, and queue texts that miss a language or use a
    placeholder other than {name} and {opens}. With ``where`` (a path in handoff_rules.yml to
    "file:line"), each problem starts with its file and line."""

    def at(*path: str | int) -> str:
        return f"{where(*path)}: " if where else ""

    found = []
    for trigger in rules.triggers.values():
        if trigger.queue not in rules.queues:
            found.append(
                f"{at('triggers', trigger.name, 'queue')}trigger {trigger.name!r}: queue {trigger.queue!r} has no entry in queues: "
                "(without business hours it would count as always open)"
            )
    for queue in rules.queues.values():
        for key, texts in (("name", dict(queue.names)), ("closed_text", dict(queue.closed_texts))):
            for language in QUEUE_LANGUAGES:
                if language not in texts:
                    found.append(f"{at('queues', queue.queue, key)}queue {queue.queue!r}: {key} has no {language!r} text")
        for language, text in queue.closed_texts:
            unknown = sorted(placeholders(text) - PLACEHOLDERS)
            if unknown:
                names = ", ".join("{" + name + "}" for name in unknown)
                found.append(
                    f"{at('queues', queue.queue, 'closed_text', language)}queue {queue.queue!r}: closed_text {language!r} uses {names}; "
                    "only {name} and {opens} are filled in"
                )
    return found


def main() -> int:
    domain_path = PROJECT_ROOT / "domain"
    if not domain_path.is_dir():
        domain_path = PROJECT_ROOT / "domain.yml"
    rules_file = rules_path()
    found = problems(domain_path, rules_file)
    if found:
        print(f"{rules_file.name}: {len(found)} problem(s)", file=sys.stderr)
        for problem in found:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(
        f"{rules_file.name}: {len(load_rules(rules_file).triggers)} triggers, all consistent with the domain, "
        "the rules in data/rules and the code"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
