"""The evaluation floor: validated config and suites, data (Hub, local, bundled),
``embed/`` (specs, loading, pooling, cache), representations, distribution and the
pipeline ``run(config) -> Results`` (which writes nothing), plus the results schema.

The only floor that imports transformers, datasets, accelerate and
sentence-transformers (always inside functions, so importing this package is light).
"""

from .config import Config, from_mapping, load_config
from .data import DataBundle, load_data
from .pipeline import run
from .results import Results

__all__ = ["Config", "DataBundle", "Results", "from_mapping", "load_config", "load_data", "run"]
