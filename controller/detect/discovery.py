"""Discovery of errors the library does not know.

A line that looks like an error (a level word or field, an exception class) but matches
no pattern is mined into a template with drain3, one miner per service. Every such line is
a sighting of its template (what came before an incident is learned from them); when a
template has been seen ``min_occurrences`` times it also becomes an "unclassified"
finding carrying the template, so a user learns what the library misses (and can add a
pattern for it). A template's id is fixed by its cluster's first template (the first
line, masked): drain3 generalises a template as lines come, the id stays.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

from controller.detect.fingerprint import mask_variables

# drain3 logs every new cluster at INFO; the controller reports what matters itself
logging.getLogger("drain3").setLevel(logging.WARNING)

ERRORISH = re.compile(
    r"(?:^|[\s\[(|:])(?:ERROR|FATAL|CRITICAL|PANIC|EMERG|SEVERE|ALERT)(?:$|[\s\]):|,])"
    r"|(?i:\"?\blevel\"?\s*[:=]\s*\"?(?:error|fatal|critical|panic|emerg)\b)"
    r"|\b[A-Z][A-Za-z0-9_]*(?:Exception|Error)\b(?::|\s*\()"
)
MAX_CLUSTERS = 500

# What every line ERRORISH matches contains, as Hyperscan expressions: scanned with the
# patterns so ``looks_like_error`` runs only on lines that contain one of them. Python's
# case-insensitive "i" also matches the Turkish dotted and dotless i (UTF-8 C4 B0, C4 B1),
# so the level words accept them too; no other letter of them has such a twin.
_I = r"(?:i|\xc4[\xb0\xb1])"
ERRORISH_HINTS = (
    ("ERROR|FATAL|CRITICAL|PANIC|EMERG|SEVERE|ALERT", False),
    (rf"level[^\n]*(?:error|fatal|cr{_I}t{_I}cal|pan{_I}c|emerg)", True),
    ("Exception|Error", False),
)


def looks_like_error(text: str) -> bool:
    return ERRORISH.search(text) is not None


@dataclass(frozen=True, slots=True)
class Mined:
    template_id: str
    template: str  # the template as mined now
    recurring: bool  # seen ``min_occurrences`` times: an unclassified finding


class Discovery:
    def __init__(self, min_occurrences: int = 3) -> None:
        self._min = max(1, min_occurrences)
        self._miners: dict[str, TemplateMiner] = {}
        self._known: dict[tuple[str, int], str] = {}  # (service, cluster) -> template id

    def _miner(self, service: str) -> TemplateMiner:
        miner = self._miners.get(service)
        if miner is None:
            config = TemplateMinerConfig()
            config.profiling_enabled = False
            config.drain_sim_th = 0.5
            config.drain_max_clusters = MAX_CLUSTERS
            miner = self._miners[service] = TemplateMiner(config=config)
        return miner

    def add(self, service: str, text: str) -> Mined:
        """Learn one unmatched error line (already redacted): its template, and whether it
        has recurred often enough to be a finding."""
        result = self._miner(service).add_log_message(mask_variables(text)[:2000])
        key = (service, int(result["cluster_id"]))
        template = str(result["template_mined"])
        template_id = self._known.get(key)
        if template_id is None:
            template_id = self._known[key] = hashlib.sha256(template.encode()).hexdigest()[:10]
        return Mined(template_id, template, int(result["cluster_size"]) >= self._min)
