"""Who writes a text method's instructions, critiques and feedback: the task model (the default), another of
our model configs, or an OpenAI-compatible endpoint. `optimizer.writer` picks one (spec.py); build.py makes it.

    null                                    the task model, counted under the "optimizer" role (as always)
    gemma3-270m                             a model config of conf/model/, counted under the "writer" role
    {base_url: ..., model: ..., ...}        an endpoint (the `writer` extra: pip install 'greater[writer]')
"""

from greater.writers.base import Writer, WriterError, writer_usage
from greater.writers.spec import EndpointSpec, ModelSpec, parse_writer

__all__ = ["EndpointSpec", "ModelSpec", "Writer", "WriterError", "parse_writer", "writer_usage"]
