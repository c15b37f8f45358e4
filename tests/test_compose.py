"""Checks of docker-compose.yml, the Dockerfile, .dockerignore and .env.example.

No Docker engine is needed: the tests parse the files, and import the entry
points that the containers would start, so a renamed module, command or
setting fails here instead of in a container.
"""

import importlib
import json
import re
import runpy
import shlex
from fnmatch import fnmatchcase
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = ROOT / "logplatform" / "settings.py"

INFRA_IMAGES = {
    "postgres": "postgres:15",
    "redis": "redis:7",
    "kafka": "apache/kafka:4.1.1",
    "kafka-init": "apache/kafka:4.1.1",
}
# Services built from the Dockerfile. All but migrate are Procfile processes
# of the same name.
APP_SERVICES = ["migrate", "api", "consumer", "worker", "beat", "flower"]
PROCFILE_SERVICES = ["api", "consumer", "worker", "beat", "flower"]
EXPECTED_SERVICES = sorted([*INFRA_IMAGES, *APP_SERVICES])
HEALTHCHECKED = ["postgres", "redis", "kafka", "api"]
# The condition a dependent waits for, by the service it depends on.
DEPENDENCY_CONDITIONS = {
    "postgres": "service_healthy",
    "redis": "service_healthy",
    "kafka": "service_healthy",
    "migrate": "service_completed_successfully",
    "kafka-init": "service_completed_successfully",
}
CELERY_SUBCOMMANDS = {"worker", "beat", "flower"}
BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Options that set where a process listens. The Procfile binds 127.0.0.1 and
# the containers bind 0.0.0.0, so these may differ between the two.
LISTEN_OPTIONS = {"--bind", "-b", "--address", "--port"}
# `${NAME:-default}` as written in the Procfile and in docker-compose.yml.
DEFAULT_EXPANSION = re.compile(r"\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}")
ENV_READ = re.compile(
    r"(?:env_(?:str|bool|int|float|list|day_overrides)\(|os\.environ\.get\(|os\.getenv\("
    r"|os\.environ\[)\s*[\"']([A-Z][A-Z0-9_]*)[\"']"
)
# `NAME=value`, or `# NAME=value` for a default that is shown but not set.
ENV_EXAMPLE_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_service(name: str) -> dict:
    services = load_compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def command_args(name: str) -> list[str]:
    command = compose_service(name).get("command")
    assert command, f"service {name!r} has no command"
    return shlex.split(command) if isinstance(command, str) else list(command)


def procfile_commands() -> dict[str, list[str]]:
    """Parse the Procfile into argument lists, with `.venv/bin/` dropped."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, command = line.split(":", 1)
        args = shlex.split(command)
        args[0] = Path(args[0]).name
        commands[name.strip()] = args
    return commands


def without_listen_options(args: list[str]) -> list[str]:
    kept = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
        elif arg in LISTEN_OPTIONS:
            skip_next = True
        elif arg.split("=", 1)[0] not in LISTEN_OPTIONS:
            kept.append(arg)
    return kept


def option_value(args: list[str], *names: str) -> str | None:
    """Return the value of the first option in `names`, as `-x v` or `-x=v`."""
    for index, arg in enumerate(args):
        if arg in names and index + 1 < len(args):
            return args[index + 1]
        key, _, value = arg.partition("=")
        if key in names and value:
            return value
    return None


def expand_defaults(arg: str) -> str:
    return DEFAULT_EXPANSION.sub(lambda match: match.group(2), arg)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, with continuation lines joined."""
    instructions = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def instruction_args(arguments: str) -> list[str]:
    """Split the exec form (a JSON array) or the shell form of an instruction."""
    if arguments.startswith("["):
        return json.loads(arguments)
    return shlex.split(arguments)


def dockerignore_patterns() -> list[str]:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _pattern_matches(path: str, pattern: str) -> bool:
    if pattern.startswith("**/"):
        parts = path.split("/")
        tail = pattern[3:]
        return any(fnmatchcase("/".join(parts[i:]), tail) for i in range(len(parts)))
    return fnmatchcase(path, pattern)


def is_dockerignored(path: str) -> bool:
    """Apply .dockerignore to a path relative to the build context.

    A pattern that matches a folder excludes everything in it, and the last
    matching pattern wins, so `!pattern` can re-include. `**` is understood
    only as a leading `**/`.

    NOTE: fnmatch's `*` also matches `/`, which Docker's does not, so a
    pattern such as `logs/*.py` would exclude files in deeper folders here.
    """
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in dockerignore_patterns():
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        if any(_pattern_matches(prefix, pattern) for prefix in prefixes):
            ignored = not negated
    return ignored


def env_names_in_settings() -> set[str]:
    return set(ENV_READ.findall(SETTINGS_FILE.read_text()))


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = ENV_EXAMPLE_LINE.match(line.strip())
        if match:
            values[match.group(2)] = match.group(3)
    return values


def procfile_variables() -> dict[str, str]:
    """Return the `${NAME:-default}` variables of the Procfile with defaults."""
    return dict(DEFAULT_EXPANSION.findall((ROOT / "Procfile").read_text()))


def settings_with_environment(monkeypatch, values: dict[str, str]) -> dict:
    """Execute settings.py with only `values` set among the variables it reads."""
    for name in env_names_in_settings():
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    namespace = runpy.run_path(str(SETTINGS_FILE))
    return {name: value for name, value in namespace.items() if name.isupper()}


def check_manage_command(args: list[str]) -> None:
    assert args[1] == "manage.py", f"python runs {args[1]!r}, not manage.py"
    assert args[2] in get_commands(), f"no management command {args[2]!r}"


def check_gunicorn_app(args: list[str]) -> None:
    candidates = without_listen_options(args)[1:]
    specs = [arg for arg in candidates if re.fullmatch(r"[A-Za-z_][\w.]*:\w+", arg)]
    assert len(specs) == 1, f"expected one MODULE:NAME in {args}"
    module_name, attribute = specs[0].split(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute, None)), f"{specs[0]} not found"


def celery_subcommand(args: list[str]) -> str | None:
    """Return the first positional argument after `celery -A APP`."""
    skip_next = False
    for arg in args[1:]:
        if skip_next:
            skip_next = False
        elif arg in {"-A", "--app"}:
            skip_next = True
        elif not arg.startswith("-"):
            return arg
    return None


def check_celery_command(args: list[str]) -> None:
    app_name = option_value(args, "-A", "--app")
    assert app_name == "logplatform"
    # find_app resolves -A the way the celery command does.
    assert isinstance(find_app(app_name), Celery)
    subcommand = celery_subcommand(args)
    assert subcommand in CELERY_SUBCOMMANDS, f"{args} runs {subcommand}"


def test_services_present():
    services = load_compose()["services"]
    missing = set(EXPECTED_SERVICES) - set(services)
    assert not missing


@pytest.mark.parametrize("name", EXPECTED_SERVICES)
def test_service_has_entry_point(name):
    definition = compose_service(name)
    assert definition.get("command") or definition.get("image")


@pytest.mark.parametrize(("name", "image"), INFRA_IMAGES.items())
def test_infra_image(name, image):
    assert compose_service(name).get("image") == image


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_built_from_dockerfile(name):
    build = compose_service(name).get("build")
    context = build.get("context") if isinstance(build, dict) else build
    assert context in {".", "./"}
    assert (ROOT / "Dockerfile").is_file()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_entry_point(name):
    args = command_args(name)
    if args[0] == "python":
        check_manage_command(args)
    elif args[0] == "gunicorn":
        check_gunicorn_app(args)
    elif args[0] == "celery":
        check_celery_command(args)
    else:
        pytest.fail(f"{name} runs {args[0]!r}, which these tests do not check")


def test_flower_subcommand_installed():
    names = {entry.name for entry in entry_points(group="celery.commands")}
    assert "flower" in names


def test_beat_scheduler():
    scheduler = option_value(command_args("beat"), "--scheduler", "-S")
    assert scheduler == BEAT_SCHEDULER
    module_name, class_name = scheduler.split(":")
    module = importlib.import_module(module_name)
    assert hasattr(module, class_name)


def test_worker_sends_events():
    assert "-E" in command_args("worker")


def test_migrate_command():
    assert command_args("migrate")[:3] == ["python", "manage.py", "migrate"]
    assert "--noinput" in command_args("migrate")


def test_procfile_matches_compose():
    procfile = procfile_commands()
    assert sorted(procfile) == sorted(PROCFILE_SERVICES)
    for name, args in procfile.items():
        compose_args = command_args(name)
        assert without_listen_options(compose_args) == without_listen_options(args), (
            f"{name}: the Procfile and docker-compose.yml run different commands"
        )


def test_depends_on_targets():
    services = load_compose()["services"]
    unknown = []
    wrong_conditions = []
    for name, definition in services.items():
        depends_on = definition.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name} lists no conditions"
        for target, options in depends_on.items():
            if target not in services:
                unknown.append(f"{name} -> {target}")
            elif options.get("condition") != DEPENDENCY_CONDITIONS.get(target):
                wrong_conditions.append(f"{name} -> {target}")
    assert not unknown
    assert not wrong_conditions


@pytest.mark.parametrize(
    ("name", "required"),
    [
        ("migrate", {"postgres"}),
        ("api", {"postgres", "redis", "migrate", "kafka-init"}),
        ("consumer", {"redis", "kafka-init"}),
        ("worker", {"postgres", "redis", "migrate"}),
        ("beat", {"postgres", "redis", "migrate"}),
        ("flower", {"redis"}),
        ("kafka-init", {"kafka"}),
    ],
)
def test_dependencies_complete(name, required):
    missing = required - set(compose_service(name).get("depends_on", {}))
    assert not missing


@pytest.mark.parametrize("name", HEALTHCHECKED)
def test_healthcheck(name):
    healthcheck = compose_service(name).get("healthcheck", {})
    assert healthcheck.get("test")
    assert not healthcheck.get("disable", False)


def test_api_healthcheck_url(client):
    """The API healthcheck requests a URL that answers 200 without signing in."""
    healthcheck = " ".join(compose_service("api")["healthcheck"]["test"])
    url = re.search(r"http://127\.0\.0\.1:8000(/[^\"']*)", healthcheck)
    assert url, "the API healthcheck requests no URL on 127.0.0.1:8000"
    response = client.get(url.group(1), HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200


def test_ports_bind_localhost():
    published = {}
    for name, definition in load_compose()["services"].items():
        for port in definition.get("ports", []):
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
                host_port = f"{host_ip}:{port.get('published')}"
            else:
                host_ip = str(port).split(":")[0]
                host_port = str(port).rsplit(":", 1)[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port!r}"
            published.setdefault(name, []).append(host_port)
    assert published == {"api": ["127.0.0.1:8000"], "flower": ["127.0.0.1:5555"]}


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("postgres", "/var/lib/postgresql/data"),
        ("redis", "/data"),
        ("kafka", "/var/lib/kafka/data"),
    ],
)
def test_named_volume(name, target):
    declared = load_compose().get("volumes") or {}
    sources = []
    for volume in compose_service(name).get("volumes", []):
        if isinstance(volume, dict):
            source, mount_target = volume.get("source"), volume.get("target")
        else:
            source, mount_target, *_ = volume.split(":")
        if mount_target == target:
            sources.append(source)
    assert len(sources) == 1, f"{name} mounts nothing at {target}"
    assert sources[0] in declared


def test_redis_appendonly():
    args = command_args("redis")
    assert option_value(args, "--appendonly") == "yes"


def test_kafka_single_node():
    environment = compose_service("kafka")["environment"]
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert environment["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    node_id = environment["KAFKA_NODE_ID"]
    assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:9093"
    for name, value in environment.items():
        if name.endswith(("_REPLICATION_FACTOR", "_MIN_ISR")):
            assert value == 1, f"{name} is {value}"


def test_kafka_init_topics(monkeypatch):
    defaults = settings_with_environment(monkeypatch, {})
    script = command_args("kafka-init")[-1]
    created = {}
    for line in script.splitlines():
        if "kafka-topics.sh" not in line:
            continue
        args = shlex.split(line)
        assert option_value(args, "--bootstrap-server") == "kafka:9092"
        assert "--create" in args
        assert "--if-not-exists" in args
        created[option_value(args, "--topic")] = option_value(args, "--partitions")
    assert created == {
        defaults["KAFKA_TOPIC"]: "4",
        defaults["KAFKA_DLQ_TOPIC"]: "1",
    }


def test_app_environment():
    environment = compose_service("api")["environment"]
    services = load_compose()["services"]
    for name in ("DATABASE_URL", "REDIS_URL"):
        assert urlparse(environment[name]).hostname in services, name
    kafka_host = environment["KAFKA_BOOTSTRAP_SERVERS"].split(":")[0]
    assert kafka_host in services
    assert environment["DJANGO_DEBUG"] == "false"
    assert environment["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_shares_environment(name):
    assert compose_service(name)["environment"] == compose_service("api")["environment"]


def test_dockerfile_base_image():
    images = [args for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert len(images) == 1
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim", images[0])


def test_dockerfile_installs_requirements():
    instructions = dockerfile_instructions()
    installs = [
        index
        for index, (keyword, args) in enumerate(instructions)
        if keyword == "RUN" and "pip install" in args
    ]
    assert len(installs) == 1
    assert "-r requirements/base.txt" in instructions[installs[0]][1]
    # The project copy comes after the install, so code changes keep the
    # install layer cached.
    assert ("COPY", ". .") in instructions
    project_copy = instructions.index(("COPY", ". ."))
    assert installs[0] < project_copy


def test_dockerfile_copy_sources():
    copies = [
        instruction_args(args)
        for keyword, args in dockerfile_instructions()
        if keyword in {"COPY", "ADD"}
    ]
    assert copies
    for args in copies:
        assert not any(arg.startswith("--from") for arg in args)
        *sources, _destination = [arg for arg in args if not arg.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"
            if source != ".":
                assert not is_dockerignored(source), f"{source} is in .dockerignore"


def test_dockerfile_non_root():
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_cmd_runs_api():
    commands = [args for keyword, args in dockerfile_instructions() if keyword == "CMD"]
    assert len(commands) == 1
    api = [expand_defaults(arg) for arg in command_args("api")]
    assert instruction_args(commands[0]) == api


def test_dockerfile_exposes_ports():
    exposed = [
        args for keyword, args in dockerfile_instructions() if keyword == "EXPOSE"
    ]
    assert set(" ".join(exposed).split()) == {"8000", "5555"}


@pytest.mark.parametrize(
    "path", ["manage.py", "logplatform/settings.py", "logs/models.py", "alerts"]
)
def test_dockerignore_keeps(path):
    assert (ROOT / path).exists()
    assert not is_dockerignored(path)


@pytest.mark.parametrize(
    "path",
    [".env", ".git/HEAD", ".venv/bin/python", "tests/test_compose.py", "logs/x.pyc"],
)
def test_dockerignore_excludes(path):
    assert is_dockerignored(path)


def test_env_example_names():
    listed = set(env_example())
    expected = env_names_in_settings() | set(procfile_variables())
    assert not expected - listed, "variables missing from .env.example"
    assert not listed - expected, "variables in .env.example that nothing reads"


def test_env_example_defaults(monkeypatch):
    example = env_example()
    in_settings = {
        name: example[name] for name in env_names_in_settings() if name in example
    }
    defaults = settings_with_environment(monkeypatch, {})
    from_example = settings_with_environment(monkeypatch, in_settings)
    changed = sorted(
        name for name in defaults if defaults[name] != from_example.get(name)
    )
    assert not changed, "settings that .env.example changes"


def test_env_example_procfile_defaults():
    example = env_example()
    for name, default in procfile_variables().items():
        assert example.get(name) == default, name


def test_env_example_secret_unset():
    """A copied .env.example must leave compose's secret key check failing."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    assert not any(line.startswith("DJANGO_SECRET_KEY=") for line in lines)
