"""moto's SQS + SNS server for msgkit's broker tests, with state that survives a graceful restart.

    python server.py serve --host 127.0.0.1 --port 4566 [--state FILE]

`serve` runs moto's own WSGI application (the one `moto_server` runs) on werkzeug. moto keeps
everything in memory; with --state, this launcher loads SQS's and SNS's in-memory backends from
FILE before it accepts a request, and writes them back (pickled, atomically) when it stops on
SIGTERM/SIGINT. So `sqs.sh restart` keeps queues, topics, subscriptions, messages, in-flight
messages (receipt handles, visibility deadlines, receive counts) and FIFO dedup/sequence state,
like a managed service that went away and came back. A SIGKILL loses what changed since the last
graceful stop: that is the "crash without durability" case, not the restart case.

Only SQS and SNS are kept; every other moto service starts empty.

Besides that, three changes to how moto runs, none to what it answers:
- a stop gate (Gate): while stopping, new requests get 503 and the ones in progress finish before
  the state is saved, so nothing is answered 200 and then missing after the restart;
- TCP_NODELAY on every connection (moto's own server waits ~40 ms per response for the client's
  delayed ACK);
- SendMessage/ReceiveMessage cost O(1) per message instead of O(queue depth)
  (_patch_per_message_cost; SQS_MOTO_UNPATCHED=1 turns that off).
"""

import argparse
import copyreg
import logging
import os
import pickle
import signal
import sys
import threading
import time

STATE_FORMAT = 1


def log(msg: str) -> None:
    print(f"[sqs-server] {time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {msg}", flush=True)


def _picklable_locks() -> None:
    # moto's queues hold a threading.Condition for long polling; a restored queue gets fresh ones.
    copyreg.pickle(threading.Condition, lambda c: (threading.Condition, ()))
    copyreg.pickle(type(threading.RLock()), lambda c: (threading.RLock, ()))
    copyreg.pickle(type(threading.Lock()), lambda c: (threading.Lock, ()))



def _patch_receive_race() -> None:
    """moto's ReceiveMessage marks messages received without a lock, and its snapshot of FIFO groups
    in flight goes stale during a long poll: two concurrent receives could both take one message.
    Each scan now runs under a lock, released while waiting, and restarts with a fresh snapshot."""
    from moto.sqs import models

    backend_cls, queue_cls = models.SQSBackend, models.Queue
    receive, wait = backend_cls.receive_message, queue_cls.wait_for_messages
    if getattr(receive, "__msgkit_patched__", False):
        return
    lock, local = threading.Lock(), threading.local()

    class Rescan(Exception):
        pass

    def receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names=None):
        end, left = time.time() + (wait_seconds_timeout or 0), wait_seconds_timeout
        while True:
            with lock:
                local.scanning = True
                try:
                    return receive(self, queue_name, count, left, visibility_timeout, message_attribute_names)
                except Rescan:
                    left = max(0.0, end - time.time())
                finally:
                    local.scanning = False

    def wait_for_messages(self, timeout):
        if not getattr(local, "scanning", False):
            return wait(self, timeout)
        lock.release()
        try:
            started = time.time()
            wait(self, timeout)
            if time.time() - started < 0.01:  # visible but all in held FIFO groups: do not spin
                time.sleep(0.05)
        finally:
            lock.acquire()
        raise Rescan()

    receive_message.__msgkit_patched__ = True
    backend_cls.receive_message = receive_message
    queue_cls.wait_for_messages = wait_for_messages

def _patch_per_message_cost() -> None:
    """Make moto's SendMessage and ReceiveMessage cost O(1) per message instead of O(queue depth).

    moto 5.2 reads `queue.attributes` for one flag (ContentBasedDeduplication) up to three times
    per sent message, and for MessageRetentionPeriod three times per *received* message (through
    get_queue_attributes); each read also computes the three Approximate* counts by scanning
    every message in the queue. With 2,000 messages queued, 2,000 sends took 141 s and receiving
    10 took ~1 s. Inside those callers only, the counts are skipped: they are not read there.
    GetQueueAttributes called by a client is untouched.
    """
    from moto.sqs import models

    queue_cls = models.Queue
    counts = {
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    }
    callers = {"send_message", "_validate_message", "add_message"}
    via_get_queue_attributes = {"is_message_valid_based_on_retention_period"}
    attributes = queue_cls.__dict__.get("attributes")
    if not isinstance(attributes, property) or not all(isinstance(queue_cls.__dict__.get(c), property) for c in counts):
        log("moto's Queue changed shape: per-message cost patch NOT applied (sends and receives cost O(queue depth))")
        return
    local = threading.local()

    def counts_unused() -> bool:
        caller = sys._getframe(2)
        while caller.f_code.co_name == "<genexpr>" and caller.f_back is not None:
            caller = caller.f_back
        if caller.f_code.co_name in callers:
            return True
        return caller.f_code.co_name == "get_queue_attributes" and caller.f_back.f_code.co_name in via_get_queue_attributes

    def patched_attributes(self):
        if not counts_unused():
            return attributes.fget(self)
        local.skip_counts = True
        try:
            return attributes.fget(self)
        finally:
            local.skip_counts = False

    def cheap(count_property):
        def fget(self):
            return -1 if getattr(local, "skip_counts", False) else count_property.fget(self)

        return property(fget)

    queue_cls.attributes = property(patched_attributes)
    for c in counts:
        setattr(queue_cls, c, cheap(queue_cls.__dict__[c]))


def _backends():
    from moto.sns.models import sns_backends
    from moto.sqs.models import sqs_backends

    return {"sqs": sqs_backends, "sns": sns_backends}


def _moto_version() -> str:
    import moto

    return moto.__version__


def load_state(path: str) -> None:
    if not os.path.exists(path):
        log(f"no saved state at {path}: starting empty")
        return
    t0 = time.monotonic()
    try:
        with open(path, "rb") as f:
            saved = pickle.load(f)
        if saved.get("format") != STATE_FORMAT or saved.get("moto") != _moto_version():
            raise ValueError(
                f"saved by moto {saved.get('moto')} (format {saved.get('format')}), "
                f"this is moto {_moto_version()} (format {STATE_FORMAT})"
            )
        counts = {}
        for service, backend_dict in _backends().items():
            n = 0
            for account_id, regions in saved["backends"][service].items():
                for region, backend in regions.items():
                    # indexing creates (and registers) the account's container, as a request would
                    backend_dict[account_id][region] = backend
                    n += len(getattr(backend, "queues" if service == "sqs" else "topics", {}))
            counts[service] = n
    except Exception as e:  # a state we cannot read must not stop the server from starting
        from moto.core.base_backend import BackendDict

        BackendDict.reset()  # drop whatever part of it was already put in place
        aside = f"{path}.unreadable-{int(time.time())}"
        os.replace(path, aside)
        log(f"could not restore {path} ({type(e).__name__}: {e}); moved it to {aside}, starting empty")
        return
    log(
        f"restored {counts['sqs']} queue(s) and {counts['sns']} topic(s) from {path} "
        f"in {time.monotonic() - t0:.3f} s"
    )


def save_state(path: str) -> None:
    t0 = time.monotonic()
    tmp = f"{path}.tmp"
    for attempt in range(5):
        try:
            snapshot = {
                service: {acct: dict(regions) for acct, regions in backend_dict.items()}
                for service, backend_dict in _backends().items()
            }
            data = pickle.dumps(
                {"format": STATE_FORMAT, "moto": _moto_version(), "saved_at": time.time(), "backends": snapshot},
                protocol=pickle.HIGHEST_PROTOCOL,
            )
            break
        except RuntimeError as e:  # "changed size during iteration": a request thread was still busy
            log(f"state changed while saving ({e}); retrying")
            time.sleep(0.05 * (attempt + 1))
    else:
        log("could not take a consistent snapshot: state NOT saved")
        return
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    log(f"saved state ({len(data)} bytes) to {path} in {time.monotonic() - t0:.3f} s")


class Gate:
    """WSGI wrapper that lets the server stop without losing an answered request.

    On close, requests that arrive get 503 (the SDK retries them, then meets a refused
    connection), and close waits for the ones in progress, except long polls, which may wait 20 s
    for nothing. So no SendMessage/Publish/Delete is answered 200 and then missing from the saved
    state. A receive answered after the snapshot is undone by the restart: its messages are
    delivered again (at-least-once), and their old receipt handles are unknown afterwards.
    """

    LONG = ("AmazonSQS.ReceiveMessage",)

    def __init__(self, app) -> None:
        self.app = app
        self.cond = threading.Condition()
        self.busy = 0
        self.closed = False

    def __call__(self, environ, start_response):
        counted = environ.get("HTTP_X_AMZ_TARGET") not in self.LONG
        with self.cond:
            if self.closed:
                start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Connection", "close")])
                return [b"the server is stopping"]
            if counted:
                self.busy += 1
        try:
            return self.app(environ, start_response)  # moto's responses are built in full here
        finally:
            if counted:
                with self.cond:
                    self.busy -= 1
                    self.cond.notify_all()

    def close(self, timeout: float) -> bool:
        with self.cond:
            self.closed = True
            return self.cond.wait_for(lambda: self.busy == 0, timeout)


def serve(host: str, port: int, state: str | None) -> None:
    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    os.environ.setdefault("MOTO_PORT", str(port))
    _picklable_locks()
    if not os.environ.get("SQS_MOTO_UNPATCHED"):
        _patch_per_message_cost()
        _patch_receive_race()
    if state:
        load_state(state)

    class Handler(MotoRequestHandler):
        # werkzeug writes the status line + headers and the body in separate sends; with Nagle on,
        # the body then waits for the client's delayed ACK: ~40 ms per request on loopback.
        disable_nagle_algorithm = True

    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto_server does
    # werkzeug logs one line per request by default: thousands a second under load. Errors stay.
    if not os.environ.get("SQS_LOG_REQUESTS"):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    gate = Gate(app)
    server = make_server(host, port, gate, threaded=True, request_handler=Handler)
    stopping = threading.Event()

    def on_signal(signum, _frame):
        if stopping.is_set():
            return
        stopping.set()
        log(f"signal {signum}: stopping")
        # shutdown() waits for serve_forever to return, so it must run off the main thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log(f"moto {_moto_version()} serving SQS and SNS on http://{host}:{port} (pid {os.getpid()})")
    server.serve_forever(poll_interval=0.2)
    server.server_close()  # no new connections; request threads still running are daemons
    if not gate.close(timeout=5):
        log("requests still running after 5 s: saving anyway")
    if state:
        save_state(state)
    log("stopped")
    # Skip the interpreter's teardown (seconds with a large state, and daemon request threads
    # still parked in long polls): everything worth keeping is saved.
    sys.stdout.flush()
    os._exit(0)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=4566)
    s.add_argument("--state", default=None, help="file to restore state from at start and save it to at stop")
    args = p.parse_args()
    serve(args.host, args.port, args.state)


if __name__ == "__main__":
    main()
