import dataclasses, tempfile, sys
from pathlib import Path
from benchmarks import pairs
n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
print(pairs.import_time(dataclasses.replace(pairs.QUICK, import_runs=n), Path(tempfile.mkdtemp())).row())
