#!/usr/bin/env python3
"""Verdicts for tools/gpu_check.sh, from what ctest and Google Benchmark wrote.

  gpu_check_report.py tests JUNIT_XML
      Reads `ctest --output-junit` of the GPU tests (ctest -L gpu). A test counts as skipped
      when its output has GoogleTest's "[  SKIPPED ]" (so the verdict does not depend on how
      CMake maps skips); a skip whose output says "no CUDA device" means the GPU test did not
      run. Exit 0: no failure, no such skip, and at least one GPU test ran; 1: a test failed
      or could not start (or the file is unreadable); 3: the GPU tests did not run.

  gpu_check_report.py bench MERGED_JSON PROGRAM_JSON...
      Merges the programs' Google Benchmark JSON files (named <program>.json) into one, in
      Google Benchmark's layout ("context" from the first program, every program's under
      "contexts", each benchmark with a "program" key), and counts the GPU benchmarks
      (names holding "/cuda/"); a file cut short (a program stopped) keeps its finished
      benchmarks. Exit 0: at least one ran and none reported an error; 1: a benchmark
      reported an error or a file is cut short or unreadable; 3: no GPU benchmark ran.

Standard library only: it runs under whatever python3 the GPU machine has.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET

NO_DEVICE = "no CUDA device"
GTEST_SKIPPED = "[  SKIPPED ]"
EXIT_OK, EXIT_FAILED, EXIT_DID_NOT_RUN = 0, 1, 3


def skip_reason(output):
    """GoogleTest prints `<file>:<line>: Skipped` and then the reason on the next line."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith(": Skipped") and i + 1 < len(lines) and lines[i + 1].strip():
            return lines[i + 1].strip()
    return "no reason given"


def classify(case):
    """('failed' | 'not run' | 'skipped' | 'passed', detail) for one <testcase> of ctest's
    JUnit file. A skip is GoogleTest's own ("[  SKIPPED ]" in the output, the detail is the
    whole output); ctest's "not run" without it (a missing executable, a disabled test) is
    not a skip, and the detail is ctest's message."""
    output = "\n".join(e.text or "" for e in case.iter() if e.tag in ("system-out", "system-err"))
    status = (case.get("status") or "").lower()
    if case.find("failure") is not None or case.find("error") is not None or status == "fail":
        return "failed", output
    if GTEST_SKIPPED in output:
        return "skipped", output
    skipped = case.find("skipped")
    if skipped is not None or status in ("notrun", "disabled"):
        message = skipped.get("message") if skipped is not None else None
        return "not run", message or output.strip() or status
    return "passed", output


def tests_verdict(path):
    try:
        cases = ET.parse(path).getroot().iter("testcase")
    except (OSError, ET.ParseError) as err:
        print(f"RESULT: FAIL: cannot read the GPU test results {path}: {err}")
        return EXIT_FAILED
    failed, not_run, passed, no_device, other_skips = [], [], [], [], {}
    for case in cases:
        name = case.get("name", "?")
        kind, detail = classify(case)
        if kind == "failed":
            failed.append(name)
        elif kind == "not run":
            not_run.append(f"{name} ({detail})")
        elif kind == "passed":
            passed.append(name)
        elif NO_DEVICE in detail:
            no_device.append(name)
        else:
            other_skips.setdefault(skip_reason(detail), []).append(name)
    skipped = len(no_device) + sum(len(v) for v in other_skips.values())
    total = len(failed) + len(not_run) + len(passed) + skipped
    print(f"GPU tests: {total} in all, {len(passed)} passed, {len(failed)} failed, "
          f"{len(not_run)} could not run, {skipped} skipped "
          f"({len(no_device)} with '{NO_DEVICE}')")
    for reason, names in sorted(other_skips.items()):
        print(f"  skipped ({reason}): {', '.join(sorted(names))}")
    for name in sorted(failed):
        print(f"  FAILED: {name}")
    for line in sorted(not_run):
        print(f"  COULD NOT RUN: {line}")
    if failed or not_run:
        print(f"RESULT: FAIL: of {total} GPU tests, {len(failed)} failed and "
              f"{len(not_run)} could not run")
        return EXIT_FAILED
    if total == 0:
        print("RESULT: FAIL: GPU tests did not run: ctest -L gpu found no test")
        return EXIT_DID_NOT_RUN
    if no_device or not passed:
        print(f"RESULT: FAIL: GPU tests did not run: {len(no_device)} of {total} skipped "
              f"with '{NO_DEVICE}'; {len(passed)} ran")
        return EXIT_DID_NOT_RUN
    print(f"RESULT: PASS: {len(passed)} of {total} GPU tests ran and passed")
    return EXIT_OK


def salvage(text):
    """The benchmarks of a JSON file cut short (a program stopped at its time limit): Google
    Benchmark writes each finished benchmark as an object closed by '    }' at four spaces."""
    end = text.rfind("\n    }")
    if end < 0 or '"benchmarks": [' not in text:
        return None
    try:
        return json.loads(text[: end + len("\n    }")] + "\n  ]\n}")
    except json.JSONDecodeError:
        return None


def load_program(path):
    """(benchmark JSON or None, problem or None); an empty file is a program that ran none."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        return None, f"no results ({err.strerror})"
    if not text.strip():
        return None, None
    try:
        return json.loads(text), None
    except json.JSONDecodeError as err:
        data = salvage(text)
        if data is None:
            return None, f"unreadable JSON, cut short? ({err.msg})"
        return data, f"JSON cut short; the {len(data['benchmarks'])} finished benchmarks kept"


def bench_verdict(merged_path, program_paths):
    merged = {"context": None, "contexts": {}, "benchmarks": []}
    total_gpu, errors, problems = 0, [], []
    for path in program_paths:
        program = os.path.splitext(os.path.basename(path))[0]
        data, problem = load_program(path)
        if problem:
            problems.append(f"{program}: {problem}")
        data = data or {}
        if data.get("context") is not None:
            merged["contexts"][program] = data["context"]
            if merged["context"] is None:
                merged["context"] = data["context"]
        gpu = 0
        for bm in data.get("benchmarks", []):
            merged["benchmarks"].append(dict(bm, program=program))
            if "/cuda/" not in bm.get("name", ""):
                continue
            if bm.get("error_occurred"):
                errors.append(f"{bm['name']}: {bm.get('error_message', 'error')}")
            elif bm.get("run_type", "iteration") == "iteration":
                gpu += 1
        total_gpu += gpu
        print(f"  {program}: {gpu} GPU benchmarks ran" + (f"; {problem}" if problem else ""))
    with open(merged_path, "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=1)
    print(f"GPU benchmarks: {total_gpu} ran, {len(errors)} reported an error "
          f"({len(program_paths)} programs; merged into {merged_path})")
    for line in errors:
        print(f"  ERROR: {line}")
    if errors or problems:
        print(f"RESULT: FAIL: {len(errors)} GPU benchmarks reported an error; the results of "
              f"{len(problems)} programs are cut short or missing")
        return EXIT_FAILED
    if total_gpu == 0:
        print("RESULT: FAIL: no GPU benchmark ran (the /cuda/ variants register only when a "
              "CUDA device is usable)")
        return EXIT_DID_NOT_RUN
    print(f"RESULT: PASS: {total_gpu} GPU benchmarks ran")
    return EXIT_OK


def main(argv):
    if len(argv) == 2 and argv[0] == "tests":
        return tests_verdict(argv[1])
    if len(argv) >= 2 and argv[0] == "bench":
        return bench_verdict(argv[1], argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
