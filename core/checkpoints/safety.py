"""What a refused checkpoint holds, told without running it: the names its pickle would import (read opcode by
opcode, importing nothing), never torch's advice to load it unsafely."""
from __future__ import annotations

import io
import pickletools
import re


RESAVE = ("To use it, re-save just its weights where the model was made: torch.save(model.state_dict(), path) "
          "(a plain dict of tensors) or safetensors.torch.save_file(model.state_dict(), path)")


def refused_content(message: str, data: bytes) -> str:
    """What the weights-only unpickler refused, from its message. Torch's own text is never passed on:
    it advises ``weights_only=False`` or allow-listing the global, either of which would run the file's code."""
    found = re.search(r"GLOBAL ([A-Za-z_][\w.]{0,200})", message)
    names = [found.group(1)] if found else pickled_globals(data)
    if names:
        return f"it would import {', '.join(names[:3])} (classes or functions, not tensors)"
    found = re.search(r"Unsupported operand (\d+)", message)
    if found:
        return f"it uses pickle opcode {found.group(1)}, which weights-only loading does not allow"
    return "it holds objects other than tensors"


def pickled_globals(data: bytes) -> list[str]:
    """Names a plain (non-zip) pickle would import; pickletools only parses opcodes, it imports nothing."""
    names: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            if op.name == "GLOBAL":
                names.append(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:  # module and name were pushed just before
                names.append(".".join(strings[-2:]))
            elif isinstance(arg, str):
                strings.append(arg)
    except ValueError:  # not a plain pickle (a torch zip file) or cut short: report what was seen
        pass
    return [n for n in names if re.fullmatch(r"[A-Za-z_][\w.]{0,200}", n)]


def error_summary(e: Exception) -> str:
    """The error's type and short text, unless the text carries torch's unsafe loading advice."""
    text = str(e)[:200]
    return type(e).__name__ if "weights_only" in text or not text else f"{type(e).__name__}: {text}"
