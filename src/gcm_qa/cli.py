"""``gcm-qa``: a thin command line over :class:`gcm_qa.engine.Engine`.

Commands parse flags, map them onto the settings tree, call the library and turn domain errors
into one clear line on stderr with a non-zero exit; tracebacks are for bugs, not user mistakes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gcm_qa import __version__
from gcm_qa.types import STAKEHOLDERS

QUESTIONNAIRE_CORPUS = Path("tests/fixtures/questionnaires/forms")
QUESTIONNAIRE_GOLD = Path("eval/questionnaires.jsonl")
QUESTIONNAIRE_THRESHOLDS = Path("eval/thresholds-questionnaires.toml")
QUESTIONNAIRE_OUT = Path("eval/results/questionnaires")
EXIT_USAGE = 2
EXIT_ERROR = 1


class CliError(Exception):
    """A user-facing failure: printed as 'gcm-qa: error: <message>'."""


def _settings_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("settings (also GCM_QA_<GROUP>__<FIELD> environment variables)")
    g.add_argument("--corpus", type=Path, help="corpus folder (default: ./corpus)")
    g.add_argument("--index-dir", type=Path, help="index folder (default: ./index)")
    g.add_argument("--cache-dir", type=Path, help="where the packaged model is extracted")
    g.add_argument("--model", help="sentence-transformers model name or path")
    g.add_argument("--chunk-chars", type=int, help="target chunk size in characters")
    g.add_argument("--overlap-chars", type=int, help="overlap between chunks in characters")


def _llm_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("generative answers (also GCM_QA_LLM__<FIELD>; the key from $OPENAI_API_KEY or "
                             "the variable llm.api_key_env names)")
    g.add_argument("--llm", action="store_true", default=None,
                   help="answer with a language model, every sentence checked against its source "
                        "(the extractive answer is the fallback)")
    g.add_argument("--llm-provider", choices=["openai", "ollama"], help="'openai': any OpenAI-compatible server")
    g.add_argument("--llm-url", help="the server's base URL, e.g. http://127.0.0.1:8080/v1 or http://127.0.0.1:11434")
    g.add_argument("--llm-model", help="the model's name as the server knows it")
    g.add_argument("--llm-timeout", type=float, help="seconds to wait for the model before falling back")


def _filter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (repeat a flag for alternatives)")
    g.add_argument("--kind", action="append", choices=["report", "questionnaire"], help="document kind")
    g.add_argument("--author", action="append", help="country or organisation, as in the manifest")
    g.add_argument("--language", action="append", help="document language code, e.g. en, es")
    g.add_argument("--section", help="only passages whose section path contains this text")
    g.add_argument("--area", action="append", type=int, choices=range(1, 6), metavar="1-5",
                   help="GCM thematic area")
    g.add_argument("--objective", action="append", type=int, choices=range(1, 24), metavar="1-23",
                   help="GCM objective")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gcm-qa",
        description="Cited answers from the GCM regional review of Latin America and the Caribbean.",
    )
    parser.add_argument("--version", action="version", version=f"gcm-qa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log warnings and progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build or update the index from the corpus folder")
    _settings_args(p)
    p.add_argument("--full", action="store_true", help="rebuild everything, reusing no embeddings")
    p.add_argument("--watch", action="store_true", help="keep running and re-index when the corpus changes")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--save-vectors", action="store_true",
                   help="after building, write the index's vectors as the shipped vectors of this model "
                        "(index/vectors/<model>.npz), so a fresh clone need not embed the corpus")

    p = sub.add_parser("add", help="copy reports into the corpus and update the index")
    _settings_args(p)
    p.add_argument("files", nargs="+", type=Path, help="PDF, DOCX, Markdown or text files")
    p.add_argument("--replace", action="store_true",
                   help="replace a document of the same name (default: keep it and add the new file under a "
                        "free name, 'name (2).pdf')")

    p = sub.add_parser("ask", help="answer a question with cited passages")
    _settings_args(p)
    _filter_args(p)
    p.add_argument("question", nargs="?", help="the question (omit with --batch)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--batch", type=Path, help="file with one question per line; writes JSON Lines")
    p.add_argument("--output", type=Path, help="with --batch: write here instead of stdout")
    p.add_argument("--top-k", type=int, help="how many passages to retrieve")
    _llm_args(p)

    p = sub.add_parser("compare", help="one question put to every author: a row per author, quoted and cited")
    _settings_args(p)
    p.add_argument("question", help="e.g. 'Which countries reported regularisation programmes?'")
    p.add_argument("--authors", nargs="+", default=[], metavar="NAME",
                   help="only these authors (by name or country, in part); default: those the question names, "
                        "else every author of a voluntary report")
    p.add_argument("--stakeholder", nargs="+", default=[], choices=list(STAKEHOLDERS), metavar="KIND",
                   help=f"only authors of these kinds: {', '.join(STAKEHOLDERS)} (default: the kind the question "
                        "asks about, 'which countries...' meaning States)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--csv", type=Path, metavar="FILE", help="also write the matrix as CSV")

    p = sub.add_parser("coverage", help="authors of voluntary reports by thematic area or objective, with how "
                                        "many answers each gave")
    _settings_args(p)
    p.add_argument("--by", choices=["area", "objective"], default="area")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.add_argument("--png", type=Path, metavar="FILE", help="also write the heat map as a PNG")

    p = sub.add_parser("records", help="every answer read from the voluntary reports' forms, with who gave it")
    _settings_args(p)
    p.add_argument("--authors", nargs="+", default=[], metavar="NAME", help="only these authors (in part)")
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv", help="output format (default: csv)")

    p = sub.add_parser("chat", help="start the chat in the browser (http://127.0.0.1:7860)")
    _settings_args(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    p.add_argument("--auth", help="user:password for basic auth (or GCM_QA_AUTH)")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="largest accepted upload")
    p.add_argument("--upload-dir", type=Path, help="folder for uploads (default: a temporary folder)")
    _llm_args(p)

    p = sub.add_parser("eval", help="score retrieval and answers on the gold questions")
    _settings_args(p)
    p.add_argument("--split", choices=["tune", "dev", "test", "all", "sealed"], default="tune",
                   help="'tune': the tuning set (dev and the spent test split), the CI gate; 'sealed' with "
                        "--gold eval/sealed.jsonl: the held-out set, run only to report")
    p.add_argument("--gold", type=Path, default=Path("eval/gold.jsonl"))
    p.add_argument("--thresholds", type=Path, default=Path("eval/thresholds.toml"))
    p.add_argument("--out", type=Path, default=Path("eval/results"), help="folder for the reports")
    p.add_argument("--no-baselines", action="store_true", help="skip the BM25/dense/LangChain baselines")
    p.add_argument("--top-k", type=int, default=10, help="passages retrieved per question")
    p.add_argument("--compare", type=Path,
                   help="an earlier latest.json to list changed questions against (default: the one in --out)")
    p.add_argument("--answerer", choices=["extractive", "llm"],
                   help="who writes the answers (default: extractive; 'llm' needs --llm-model and a server)")
    _llm_args(p)
    p.add_argument("--questionnaires", action="store_true",
                   help=f"the questionnaire set: facts per author, authors who said nothing, comparisons, over "
                        f"the invented forms of {QUESTIONNAIRE_CORPUS} (defaults: --gold {QUESTIONNAIRE_GOLD}, "
                        f"--thresholds {QUESTIONNAIRE_THRESHOLDS}, --out {QUESTIONNAIRE_OUT}; its index is kept in "
                        "the cache folder, never in ./index)")
    p = sub.add_parser("models", help="list or install the embedding models that install offline from PyPI")
    p.add_argument("action", nargs="?", choices=["list", "install"], default="list")
    p.add_argument("names", nargs="*", help="models to install (default: the configured model)")
    p.add_argument("--cache-dir", type=Path, help="where models are installed (default: ~/.cache/gcm-qa)")
    p.add_argument("--keep-downloads", action="store_true", help="keep the downloaded pieces after assembly")
    return parser


def make_settings(args: argparse.Namespace) -> Any:
    from gcm_qa.settings import Settings

    overrides: dict[str, dict[str, Any]] = {}

    def put(group: str, key: str, value: Any) -> None:
        if value is not None:
            overrides.setdefault(group, {})[key] = value

    put("paths", "corpus_dir", getattr(args, "corpus", None))
    put("paths", "index_dir", getattr(args, "index_dir", None))
    put("paths", "cache_dir", getattr(args, "cache_dir", None))
    put("embedding", "model", getattr(args, "model", None))
    put("chunking", "chunk_chars", getattr(args, "chunk_chars", None))
    put("chunking", "overlap_chars", getattr(args, "overlap_chars", None))
    put("retrieval", "top_k", getattr(args, "top_k", None))
    put("llm", "enabled", getattr(args, "llm", None) or (getattr(args, "answerer", None) == "llm") or None)
    put("llm", "provider", getattr(args, "llm_provider", None))
    put("llm", "base_url", getattr(args, "llm_url", None))
    put("llm", "model", getattr(args, "llm_model", None))
    put("llm", "timeout", getattr(args, "llm_timeout", None))
    # only what was set (environment, flags) is passed on, so a field left at its default can still
    # take the encoder's calibrated value (settings.with_tuned)
    data = Settings().model_dump(exclude_unset=True)
    for group, values in overrides.items():
        data.setdefault(group, {}).update(values)
    return Settings.model_validate(data)


def make_filters(args: argparse.Namespace) -> Any:
    from gcm_qa.retrieval import Filters

    return Filters(
        kind=tuple(args.kind or ()),
        author=tuple(args.author or ()),
        language=tuple(args.language or ()),
        section=args.section or "",
        areas=tuple(args.area or ()),
        objectives=tuple(args.objective or ()),
    )


def format_answer(answer: Any) -> str:
    """Answer, then numbered sources: title, section, page and the quoted sentence(s). A generated
    sentence the check did not find in its source is listed under the answer with the reason."""
    lines = [textwrap.fill(answer.answer, width=100), ""]
    if answer.notice:
        lines.insert(0, f"({answer.notice})\n")
    if answer.answerer == "llm" and answer.unsupported:
        lines.append("Not supported by the passages it cites:")
        for u in answer.unsupported:
            lines.append(textwrap.indent(textwrap.fill(f"! {u['sentence']} ({'; '.join(u['reasons'])})", width=96),
                                         "    "))
        lines.append("")
    if answer.query and answer.query != answer.question:
        lines.insert(0, f"(searched: {answer.query})\n")
    if answer.citations:
        lines.append("Sources:")
        for c in answer.citations:
            where = c.section or "(no section)"
            page = f", {c.page_reference}" if c.page else ""
            lines.append(f"[{c.n}] {c.title} — {where}{page}{' · OCR' if c.ocr else ''}")
            quote = " ".join(c.quote.split())  # the JSON keeps the exact text; here it is wrapped
            lines.append(textwrap.indent(textwrap.fill(f"“{quote}”", width=96), "    "))
            if c.ocr:  # machine reading of a scan: a figure may be misread
                lines.append("    (text read by OCR from a scan; check it against the page)")
    return "\n".join(lines).rstrip()


def make_engine(settings: Any) -> Any:
    """The engine, with its notices (a fallback model, say) printed once on stderr."""
    from gcm_qa.engine import Engine

    engine = Engine(settings)
    for notice in engine.notices:
        print(f"gcm-qa: {notice}", file=sys.stderr)
    return engine


def _check_corpus(settings: Any) -> None:
    corpus_dir = settings.paths.corpus_dir
    if not corpus_dir.is_dir():
        raise CliError(f"corpus folder not found: {corpus_dir} (use --corpus)")


def cmd_index(args: argparse.Namespace) -> int:
    settings = make_settings(args)
    _check_corpus(settings)
    engine = make_engine(settings)
    progress = not args.no_progress and sys.stderr.isatty()

    def run(full: bool) -> None:
        report = engine.build(full=full, progress=progress, echo=lambda m: print(m, file=sys.stderr))
        for error in report.errors:
            print(f"gcm-qa: skipped {error}", file=sys.stderr)
        print(report.summary(), flush=True)

    run(args.full)
    if args.save_vectors:
        from gcm_qa.index_store import export_vectors

        print(f"Saved the vectors of {engine.model.name} to {export_vectors(settings, engine.model.identity)}")
    if args.watch:
        from watchfiles import watch

        from gcm_qa import corpus
        from gcm_qa.index_store import is_stale

        announced = False
        try:
            # yield_on_timeout: an empty batch means the watcher is running; the corpus is then
            # re-checked for anything that changed before it, and only then is "Watching" announced
            for changes in watch(settings.paths.corpus_dir, debounce=800, step=200, rust_timeout=1000,
                                 yield_on_timeout=True):
                if not announced:
                    announced = True
                    if is_stale(engine.settings, engine.model.identity):  # changed while the watcher was starting
                        run(False)
                    print(f"Watching {settings.paths.corpus_dir} for changes (Ctrl+C to stop) ...", flush=True)
                if not changes:
                    continue
                names = sorted({Path(p).name for _, p in changes})
                if all(n == corpus.JOURNAL or n.endswith((".tmp", ".part", ".previous")) for n in names):
                    continue
                print(f"Changed: {', '.join(names)}", flush=True)
                run(False)
        except KeyboardInterrupt:
            return 0
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    settings = make_settings(args)
    engine = make_engine(settings)
    result = engine.add(args.files, replace_existing=args.replace)
    for error in result.errors:
        print(f"gcm-qa: rejected {error}", file=sys.stderr)
    for name in result.unchanged:
        print(f"{name} is already in the corpus, unchanged; nothing to add.")
    for taken, given in result.renamed:
        print(f"A document named {taken} is in the corpus already: kept it, and added this one as {given} "
              "(use --replace to replace it).")
    if result.added:
        print(f"Added {len(result.added)} file(s): {', '.join(result.added)}")
    if result.replaced:
        print(f"Replaced the earlier version of: {', '.join(result.replaced)}")
    if result.report is not None:
        for error in result.report.errors:
            print(f"gcm-qa: skipped {error}", file=sys.stderr)
        print(result.report.summary())
    return 0 if not result.errors else EXIT_ERROR


def cmd_ask(args: argparse.Namespace) -> int:
    settings = make_settings(args)
    if args.batch is None and not (args.question or "").strip():
        raise CliError("the question is empty")
    if args.batch is not None and not args.batch.is_file():
        raise CliError(f"batch file not found: {args.batch}")
    _check_corpus(settings)
    engine = make_engine(settings)
    engine.ensure_index(progress=sys.stderr.isatty(), echo=lambda m: print(m, file=sys.stderr))
    filters = make_filters(args)
    if args.batch is not None:
        questions = [q.strip() for q in args.batch.read_text(encoding="utf-8").splitlines() if q.strip()]
        out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
        try:
            for q in questions:
                out.write(json.dumps(engine.ask(q, top_k=args.top_k, filters=filters).to_dict(),
                                     ensure_ascii=False) + "\n")
                out.flush()
        finally:
            if args.output:
                out.close()
        return 0
    answer = engine.ask(args.question, top_k=args.top_k, filters=filters)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(format_answer(answer))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    settings = make_settings(args)
    _check_corpus(settings)
    engine = make_engine(settings)
    engine.ensure_index(progress=sys.stderr.isatty(), echo=lambda m: print(m, file=sys.stderr))
    comparison = engine.compare(args.question, authors=args.authors, stakeholders=args.stakeholder)
    if args.csv:
        args.csv.write_text(comparison.to_csv(), encoding="utf-8")
    if args.json:
        print(json.dumps(comparison.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(comparison.table())
    if not comparison.rows:
        print("gcm-qa: no author in scope: the index holds no voluntary report of that kind "
              "(add them with 'gcm-qa add')", file=sys.stderr)
    return 0 if comparison.rows and not comparison.unknown_authors else EXIT_ERROR


def cmd_coverage(args: argparse.Namespace) -> int:
    settings = make_settings(args)
    _check_corpus(settings)
    engine = make_engine(settings)
    engine.ensure_index(progress=sys.stderr.isatty(), echo=lambda m: print(m, file=sys.stderr))
    coverage = engine.coverage(args.by)
    if args.png:
        from gcm_qa.coverage import heat_map

        args.png.write_bytes(heat_map(coverage))
    if args.csv:
        sys.stdout.write(coverage.to_csv())
    else:
        label = "area" if args.by == "area" else "obj"
        width = max((len(a) for a in coverage.authors), default=6)
        print(f"{'author':<{width}}  " + " ".join(f"{label} {c:>2}" for c in coverage.columns) + "  total")
        for i, author in enumerate(coverage.authors):
            cells = " ".join(f"{'-' if v is None else v:>{len(label) + 3}}" for v in coverage.counts[i])
            total = coverage.total(i)
            print(f"{author:<{width}}  {cells}  {'-' if total is None else total:>5}")
        for author, files in coverage.unread.items():
            print(f"{author}: no question/answer layout read in {', '.join(files)}")
    if not coverage.authors:
        print("gcm-qa: the index holds no voluntary report (add them with 'gcm-qa add')", file=sys.stderr)
    return 0


RECORD_COLUMNS = ("author", "stakeholder", "country", "language", "file", "number", "question", "answered",
                  "areas", "objectives", "page_start", "page_end", "answer")


def cmd_records(args: argparse.Namespace) -> int:
    import csv

    settings = make_settings(args)
    _check_corpus(settings)
    engine = make_engine(settings)
    engine.ensure_index(progress=sys.stderr.isatty(), echo=lambda m: print(m, file=sys.stderr))
    from gcm_qa.comparison import pick_authors

    chosen, unknown = pick_authors(args.authors, engine.authors())
    for name in unknown:
        print(f"gcm-qa: no indexed author matches {name!r}", file=sys.stderr)
    wanted = {a.name for a in chosen}
    rows = [r for r in engine.records() if not args.authors or r["author"] in wanted]
    if args.format == "jsonl":
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
    else:
        writer = csv.writer(sys.stdout)
        writer.writerow(RECORD_COLUMNS)
        for r in rows:
            writer.writerow([" ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v)
                             for v in (r[c] for c in RECORD_COLUMNS)])
    if not rows:
        print("gcm-qa: no answers read: the index holds no questionnaire whose form could be read"
              + (" for those authors" if args.authors else ""), file=sys.stderr)
        return EXIT_ERROR
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from gcm_qa.app import launch

    settings = make_settings(args)
    _check_corpus(settings)
    return launch(settings, args)


def cmd_models(args: argparse.Namespace) -> int:
    from gcm_qa import models

    settings = make_settings(args)
    cache_dir = settings.paths.cache_dir
    if args.action == "list":
        for m in models.PACKAGED.values():
            default = " (default)" if m.name == settings.embedding.model else ""
            state = "installed" if models.installed(m, cache_dir) else "not installed"
            print(f"{m.name}{default}: {state}\n    {m.title}; {m.licence}; {m.size}\n    from {m.source}")
        return 0
    wanted = [models.packaged(n if n.startswith(models.PREFIX) else models.PREFIX + n) for n in args.names] or [
        models.packaged(settings.embedding.model)]
    for m in wanted:
        if m is None:
            raise CliError(f"'{settings.embedding.model}' is not a packaged model; nothing to install")
        models.install(m, cache_dir, echo=lambda msg: print(msg, flush=True), keep_downloads=args.keep_downloads)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.questionnaires:
        return _eval_questionnaires(args)
    from gcm_qa.evaluation.harness import run_cli

    settings = make_settings(args)
    _check_corpus(settings)
    if not args.gold.is_file():
        raise CliError(f"gold file not found: {args.gold}")
    return run_cli(settings, args)


def _eval_questionnaires(args: argparse.Namespace) -> int:
    from gcm_qa.evaluation.questionnaires import run_cli

    defaults = {"gold": (Path("eval/gold.jsonl"), QUESTIONNAIRE_GOLD),
                "thresholds": (Path("eval/thresholds.toml"), QUESTIONNAIRE_THRESHOLDS),
                "out": (Path("eval/results"), QUESTIONNAIRE_OUT)}
    for name, (report_default, questionnaire_default) in defaults.items():
        if getattr(args, name) == report_default:
            setattr(args, name, questionnaire_default)
    args.corpus = args.corpus or QUESTIONNAIRE_CORPUS
    settings = make_settings(args)
    if args.index_dir is None:  # an index of the forms, apart from the user's own
        settings = settings.model_copy(update={"paths": settings.paths.model_copy(
            update={"index_dir": settings.paths.cache_dir / "eval-questionnaires-index"})})
    _check_corpus(settings)
    if not args.gold.is_file():
        raise CliError(f"gold file not found: {args.gold}")
    return run_cli(settings, args)


COMMANDS = {"index": cmd_index, "add": cmd_add, "ask": cmd_ask, "compare": cmd_compare, "coverage": cmd_coverage,
            "records": cmd_records,
            "chat": cmd_chat, "eval": cmd_eval, "models": cmd_models}


# Errors whose message is the whole answer to the user, by the module that defines each.
USER_ERRORS = {"gcm_qa.engine": "QuestionError", "gcm_qa.index_store": "IndexMissingError",
               "gcm_qa.loaders": "DocumentError", "gcm_qa.models": "ModelError"}


def _user_errors() -> tuple[type[BaseException], ...]:
    """The user-error classes, taken from the modules already imported: an error of a module never
    imported cannot have been raised, and importing them up front (the engine and its index) cost
    every command, an empty question's error included, half a second before it could answer."""
    found = [getattr(sys.modules[module], name) for module, name in USER_ERRORS.items() if module in sys.modules]
    return (CliError, FileNotFoundError, *found)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(message)s")
    try:
        return COMMANDS[args.command](args)
    except _user_errors() as exc:
        print(f"gcm-qa: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        print(f"gcm-qa: error: invalid setting {where}: {first['msg']}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # e.g. a malformed corpus manifest
        print(f"gcm-qa: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a full disk, a folder that cannot be written
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"gcm-qa: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line for the user, the traceback with --verbose
        if args.verbose:
            raise
        print(f"gcm-qa: internal error: {type(exc).__name__}: {exc} (run with -v for the details, and please "
              "report it)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
