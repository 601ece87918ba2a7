"""Every built-in exception that ends a Python process, raised by real code in a child
interpreter, one after another: what a service written in Python prints when it dies.

Run as ``python3 python_errors.py``; each case prints a line ``=== CASE NAME`` and then
the child's stderr (its traceback). Most cases are caused the way a program meets them
(a division by zero, a missing key, a refused connection); the few that only code can
cause are raised by it. SystemExit is not here: it ends a process without a traceback
(its message or nothing), and its exit code is what the controller sees.
"""

import subprocess
import sys

CASES = {
    "ZeroDivisionError": "1 / 0",
    "KeyError": "{}['user_id']",
    "IndexError": "[][1]",
    "AttributeError": "None.startswith('x')",
    "NameError": "undefined_setting",
    "UnboundLocalError": "def f():\n    total += 1\nf()",
    "TypeError": "1 + 'a'",
    "ValueError": "int('abc')",
    "AssertionError": "assert 1 == 2, 'balance mismatch'",
    "RecursionError": "def f(): f()\nf()",
    "OverflowError": "import math; math.exp(1000)",
    "FloatingPointError": "raise FloatingPointError('invalid value encountered')",
    "ArithmeticError": "raise ArithmeticError('rounding failed')",
    "LookupError": "import codecs; codecs.lookup('utf-99')",
    "ModuleNotFoundError": "import flask_missing",
    "ImportError": "from os import not_there",
    "SyntaxError": "exec('x = (')",
    "IndentationError": "exec('if True:\\nx = 1')",
    "TabError": "exec('if True:\\n\\tx = 1\\n        y = 2')",
    "FileNotFoundError": "open('/etc/app/config.yaml')",
    "PermissionError": "open('/root/app.db', 'w')",
    "IsADirectoryError": "open('/tmp')",
    "NotADirectoryError": "import os; os.listdir('/etc/hostname')",
    "FileExistsError": "import os; os.mkdir('/tmp')",
    "OSError": "import os; os.close(999)",
    "BlockingIOError": "import socket; a, b = socket.socketpair(); a.setblocking(False); a.recv(1)",
    "ChildProcessError": "import os; os.waitpid(-1, 0)",
    "ProcessLookupError": "import os; os.kill(999999, 0)",
    "InterruptedError": "raise InterruptedError(4, 'Interrupted system call')",
    "ConnectionRefusedError": "import socket; socket.create_connection(('127.0.0.1', 1))",
    "ConnectionResetError": (
        "import socket, struct\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()\n"
        "c = socket.create_connection(srv.getsockname()); s, _ = srv.accept()\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); s.close()\n"
        "c.recv(1)"
    ),
    "ConnectionAbortedError": "raise ConnectionAbortedError(103, 'Software caused connection abort')",
    "ConnectionError": "raise ConnectionError('upstream closed the stream')",
    "BrokenPipeError": "import socket; a, b = socket.socketpair(); b.close(); a.sendall(b'x' * 100000)",
    "TimeoutError": (
        "import socket\nsrv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()\n"
        "srv.settimeout(0.2); srv.accept()"
    ),
    "EOFError": "input('password: ')",
    "MemoryError": "bytearray(1 << 60)",
    "BufferError": "b = bytearray(b'x'); m = memoryview(b); b.append(1)",
    "ReferenceError": "import weakref\nclass C: pass\np = weakref.proxy(C())\np.x",
    "RuntimeError": "d = {1: 1}\nfor k in d: d[k + 1] = 1",
    "NotImplementedError": "raise NotImplementedError('export to parquet')",
    "StopIteration": "next(iter([]))",
    "StopAsyncIteration": "raise StopAsyncIteration",
    "SystemError": "raise SystemError('bad argument to internal function')",
    "UnicodeDecodeError": "b'caf\\xe9'.decode('utf-8')",
    "UnicodeEncodeError": "'café'.encode('ascii')",
    "UnicodeTranslateError": "raise UnicodeTranslateError('é', 0, 1, 'no mapping')",
    "UnicodeError": "('a' * 64 + '.com').encode('idna')",
    "GeneratorExit": "raise GeneratorExit",
    "KeyboardInterrupt": "import os, signal; os.kill(os.getpid(), signal.SIGINT); import time; time.sleep(5)",
    "Exception": "raise Exception('unexpected response from payment provider')",
    "BaseException": "raise BaseException('shutdown hook failed')",
    "ExceptionGroup": "raise ExceptionGroup('3 tasks failed', [ValueError('a'), KeyError('b'), OSError('c')])",
    "BaseExceptionGroup": "raise BaseExceptionGroup('workers stopped', [KeyboardInterrupt()])",
}


def main() -> None:
    for name, code in CASES.items():
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        print(f"=== CASE {name}", flush=True)
        print(done.stderr.rstrip(), flush=True)


if __name__ == "__main__":
    main()
