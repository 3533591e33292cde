"""The DICOM SCP (pynetdicom): C-STORE in (scanners and PACS push studies, ingested like STOW-RS),
C-ECHO, and the Query/Retrieve services C-FIND, C-GET and C-MOVE (:mod:`.dimse_qr`).

Each received data set, as it came (not decoded: a deflated one is measured before anything
inflates it, the limits of :mod:`medcodec.dicom.limits`), is made a PS3.10 file (its file meta
from the association's presentation context and the request) and handed to
:meth:`Store.ingest_bytes`; the C-STORE response status says what happened (PS3.4 Annex B.2.3,
PS3.7 C.4.2.1.4)::

    stored, duplicate           0x0000 Success
    conflict (same UID, other)  0xC111 Error: cannot understand (a Cxxx status of PS3.4 B.2.3; nothing
                                       changed, an Error Comment says so, the log names both sources)
    another instance or class   0xA900 Error: data set does not match SOP class (the data set is not
      than the request names           the SOP Instance / Class the request names; nothing stored)
    not DICOM / bad UID         0xC000 Error: cannot understand
    store full, too large       0xA700 Refused: out of resources
    Affected SOP Class not      0x0122 SOP Class not supported (the association goes on)
      a storage class
    store or catalog failure,   0x0110 Processing failure (ours, not the sender's: logged, with an
      anything else                    Error Comment; anything else was 0xC001 until 2026-12-05)

Every refusal carries an Error Comment (0000,0902; at most 64 characters, no server path).
docs/conformance.md is the conformance statement (PS3.2) of this SCP and of the DICOMweb services.

Until 2026-12-05 pynetdicom decoded the data set first and it was written again: a 1.4 MB
deflated C-STORE inflating to 1.5 GB took the server to 4.5 GB before the size limit refused it,
and a data set naming another SOP Instance than its request was stored under its own and
answered Success (an outside audit).

Every storage SOP class pynetdicom knows is accepted, in the uncompressed and the common
compressed transfer syntaxes, with SCP/SCU role selection so that C-GET can send them back. For
a storage context the requestor wants to receive on (SCP role: a C-GET), the syntax accepted is
chosen by the requestor's order (:func:`.dimse_qr.requestor_order`), not by pynetdicom's (the
acceptor's own list); for one it sends on (C-STORE), its own first choice (:func:`sender_order`);
a C-MOVE that names nothing to retrieve is answered before pynetdicom would
associate with its destination (:func:`.dimse_qr.refuse_move`); a connection that ends before
its association frees its slot at once; a C-STORE of no storage class is refused, the
association kept. These hook into pynetdicom's acceptor (:func:`_request_handler`).

The log: one INFO line per association when it ends (who, how long, released, aborted or dropped,
the requests it made and what its C-STOREs and retrieves did; a rejected one a WARNING:
:class:`_AssociationLog`). pynetdicom's own INFO lines (each request, each response, every
C-FIND identifier with the patient's name in it) are ``--log-level debug`` only, and its network
errors are one WARNING line each
(``cli/serve.py``): a soak of 30 min wrote 22,000 lines, 98 % of them pynetdicom's (an outside
audit, 2026-12-05).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CodecError
from .dimse_status import (
    CONFLICT,
    CONFLICT_COMMENT,
    PROCESSING_FAILURE,
    error_comment,
    failure_status,
    refusal_comment,
)
from .settings import DIMSE_TIMEOUT

__all__ = ["start_scp", "Scp", "implementation_identity"]

log = logging.getLogger("medcodec.dimse")


#: Seconds an association still open when the server stops may go on (a C-STORE in progress
#: finishes) before it is aborted (A-ABORT).
STOP_GRACE = 5.0


@dataclass
class Scp:
    """A running SCP: ``port`` it listens on, ``stop()`` to shut it down."""

    server: Any
    port: int

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Refuse new associations at once, give those open ``grace`` seconds to end, abort the rest.

        socketserver's ``server_close`` (in pynetdicom's ``shutdown``) joins every connection's
        thread, so until 2026-12-02 a SIGTERM stopped HTTP in 5 s and the process then lived as
        long as a peer kept its association: 61 s for an idle one (pynetdicom's network timeout),
        for ever for one kept alive by C-ECHO (an outside audit; ``systemctl stop`` waits 90 s,
        then kills)."""
        socketserver.BaseServer.shutdown(self.server)  # the accept loop ends
        self.server.socket.close()  # a new association is refused, not left unanswered
        for connection in list(getattr(self.server, "handshaking", ())):  # no association yet: nothing to wait for
            with contextlib.suppress(OSError):  # (SIGTERM waited out --dimse-timeout for them; a re-check)
                connection.shutdown(socket.SHUT_RDWR)
        end = time.monotonic() + grace
        for assoc in self.server.active_associations:
            assoc.join(max(0.0, end - time.monotonic()))
        for assoc in self.server.active_associations:
            peer = assoc.requestor
            who = str(getattr(peer, "ae_title", "") or "").strip()
            log.warning("stopping: the %s from %s:%s is still open after %.0f s: aborted",
                        f"association with {who!r}" if who else "connection (no association request)",
                        getattr(peer, "address", "?"), getattr(peer, "port", "?"), grace)  # fmt: skip
            aborting = threading.Thread(target=assoc.abort, daemon=True)
            aborting.start()
            aborting.join(1.0)
            if aborting.is_alive():
                # A-ABORT waits for the connection's reader, blocked on the rest of a PDU the peer
                # never sends (or a write it never takes): the process outlived SIGTERM as long as
                # such a peer stayed (an outside audit, 2026-12-05). Shutting the socket down wakes it.
                with contextlib.suppress(Exception):
                    assoc.dul.socket.socket.shutdown(socket.SHUT_RDWR)
                aborting.join(5.0)
        self.server.shutdown()  # closes the socket, joins the connections' threads, now quickly


def implementation_identity() -> tuple[str, str]:
    """(Implementation Class UID, Implementation Version Name) the SCP and its C-MOVE associations
    send (PS3.7 D.3.3.2): medcodec's, not pynetdicom's (``1.2.826.0.1.3680043.9.3811.3.0.4`` /
    ``PYNETDICOM_304`` until 2026-12-05, which told a peer's log and a conformance check nothing
    about what answered). The UID is a UUID-derived one (PS3.5 B.2, root ``2.25``), fixed for each
    release: ``uuid5`` of the name and version.

    >>> uid, name = implementation_identity()
    >>> uid.startswith("2.25.") and len(uid) <= 64, name.startswith("MEDCODEC_") and len(name) <= 16
    (True, True)
    """
    import uuid

    from .._version import __version__

    uid = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, f'medcodec implementation {__version__}').int}"
    return uid, f"MEDCODEC_{__version__}"[:16]


#: Associations the SCP serves at once; one more is rejected as transient (A-ASSOCIATE-RJ), which
#: senders retry. pynetdicom's default, 10, was used until 2026-12-02: an outside audit saw the
#: 11th of 16 simultaneous C-STOREs rejected.
MAX_ASSOCIATIONS = 32


def storage_sop_classes() -> list[str]:
    """The Storage SOP Classes a C-STORE or C-GET context is accepted for: pynetdicom's (the current
    ones) and the retired ones old archives still hold (pydicom's UID dictionary: Ultrasound Image
    Storage ``.6`` and Multi-frame ``.3``, Nuclear Medicine ``.5``, the trial VL / SR classes...),
    which medcodec stores and serves over DICOMweb but DIMSE refused until 2026-12-02 (an outside
    audit: a C-GET of pydicom-data's ``color-pl.dcm`` failed 0xA702, storescu had no context)."""
    from pydicom.uid import UID_dictionary
    from pynetdicom import AllStoragePresentationContexts
    from pynetdicom.service_class import ServiceClass, StorageServiceClass
    from pynetdicom.sop_class import register_uid, uid_to_service_class

    current = [str(c.abstract_syntax) for c in AllStoragePresentationContexts if c.abstract_syntax is not None]
    retired = []
    for uid, entry in UID_dictionary.items():
        name, status, keyword = entry[0], entry[3], entry[4]
        if (
            uid.startswith("1.2.840.10008.5.1.4.1.1.")
            and name.endswith(("Storage", "Storage - Trial"))
            and (status == "Retired")
        ):
            if uid_to_service_class(uid) is ServiceClass:  # unknown to pynetdicom: its C-STORE would abort
                register_uid(uid, keyword, StorageServiceClass)
            retired.append(uid)
    return list(dict.fromkeys([*current, *retired]))


def sender_order(proposed: list[str], supported: list[str]) -> list[str]:
    """``supported`` reordered for a storage SOP class the requestor sends on (C-STORE): the syntaxes
    it proposed, in its order, then medcodec's own list. A context that offers several syntaxes
    ({JPEG Lossless, Explicit VR LE, ...}, what DCMTK's ``storescu +C`` and many modalities propose, the
    file's own first) then gets the sender's first choice: its file goes as it is, stored byte for
    byte. Until 2026-12-05 it got pynetdicom's (the acceptor's list: Explicit VR LE first), so a sender
    had to decompress, and DCMTK's storescu, which cannot, failed every compressed file (an outside
    audit). A lossy syntax proposed first is taken too (a re-audit: storescu failed every file
    stored lossy, which Explicit VR LE only makes larger, not whole): what a sender compresses, and
    how, is its own setting.

    >>> sender_order(["1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2"],
    ...              ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.51"])
    ['1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.70', '1.2.840.10008.1.2', '1.2.840.10008.1.2.1']
    """
    first = [ts for ts in proposed if ts in supported]
    return list(dict.fromkeys([*first, *supported]))


def _conflict() -> Any:
    """The C-STORE response of a conflict: :data:`CONFLICT` with an Error Comment (LO, <= 64 chars)."""
    return _refusal(CONFLICT, CONFLICT_COMMENT)


def _refusal(status: int, why: str) -> Any:
    """A C-STORE response with ``status`` and why in its Error Comment (LO: at most 64 characters,
    no backslash), so that the sending system's log says it, not only the number."""
    from pydicom.dataset import Dataset

    rsp = Dataset()
    rsp.Status = status
    rsp.ErrorComment = error_comment(why)
    return rsp


def start_scp(
    store: Any,
    *,
    port: int,
    ae_title: str = "MEDCODEC",
    host: str = "127.0.0.1",
    on_stored: Callable[[str], None] | None = None,
    peers: Mapping[str, tuple[str, int]] | None = None,
    pool: Any = None,
    timeout: float = DIMSE_TIMEOUT,
    tls: ssl.SSLContext | None = None,
    tls_peers: Mapping[str, ssl.SSLContext] | None = None,
) -> Scp:
    """Start the SCP (C-STORE, C-ECHO, C-FIND, C-GET, C-MOVE) in background threads; returns once it listens.

    Parameters
    ----------
    store
        The :class:`~medcodec.delivery.store.Store` to ingest into.
    port
        TCP port (0: any free port, see :attr:`Scp.port`).
    ae_title
        The SCP's AE title.
    host
        Address to bind (the HTTP server's).
    on_stored
        Called with the Study Instance UID of every instance newly stored (the server's
        :class:`~medcodec.delivery.refresher.Refresher`).
    peers
        Known DICOM peers, AE title -> (host, port): the C-MOVE destinations, and off loopback the
        only callers that may query and retrieve (:mod:`.dimse_qr`).
    pool
        The server's :class:`~medcodec.delivery.live.LivePool` (renditions coded for a retrieve).
    timeout
        Seconds a peer may leave a PDU unfinished, or not take what is sent
        (:data:`.settings.DIMSE_TIMEOUT`, which says why); a TLS handshake too.
    tls
        The port speaks DICOM TLS with this context (:func:`.dicom_tls.server_context`); each
        connection's handshake runs in its own thread, under ``timeout``.
    tls_peers
        The client context of each peer (AE title) a C-MOVE reaches over TLS
        (:func:`.dicom_tls.client_context`).
    """
    from pynetdicom import AE, evt

    syntaxes = storage_transfer_syntaxes()

    from ..delivery.catalog import SOURCE_DIMSE

    def on_store(event: Any) -> int:
        try:
            data = event.encoded_dataset(include_meta=True)  # as received: preamble, file meta, data set
            caller = event.assoc.requestor.ae_title
            request = event.request
            expect = (str(request.AffectedSOPClassUID or ""), str(request.AffectedSOPInstanceUID or ""))
            outcome = store.ingest_bytes(data, source=f"{SOURCE_DIMSE}{str(caller).strip()}", expect=expect)
        except CodecError as exc:
            log.warning("C-STORE refused: %s", exc)
            _AssociationLog.count(event.assoc, "refused")
            return _refusal(failure_status(exc), refusal_comment(exc, str(exc).split(": ", 1)[-1]))  # not the source
        except RecursionError:  # data elements nested thousands deep (an outside audit): refused, no trace
            log.warning("C-STORE refused: sequences nested too deep to read")
            _AssociationLog.count(event.assoc, "refused")
            return _refusal(0xC000, "sequences nested too deep to read")
        except Exception:  # the peer gets a status, the log gets the trace
            log.exception("C-STORE failed")
            # ours, not the sender's: 0x0110 as for a store failure (0xC001, which DCMTK shows as "Cannot
            # understand", until 2026-12-05; a conformance check by an outside helper)
            return _refusal(PROCESSING_FAILURE, "processing failure in the receiving system (logged there)")
        _AssociationLog.count(event.assoc, outcome.status)
        if outcome.status == "conflict":
            log.warning("C-STORE conflict: %s", outcome.message)
            return _conflict()
        if outcome.status == "stored" and on_stored is not None:
            on_stored(outcome.study_uid)
        return 0x0000

    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    from .dimse_qr import QR_MODELS, qr_service
    from .settings import is_loopback

    ae = AE(ae_title=ae_title)
    ae.implementation_class_uid, ae.implementation_version_name = implementation_identity()
    ae.maximum_associations = MAX_ASSOCIATIONS
    ae.acse_timeout = timeout  # a connection closed before its request was whole ends its association now
    # a C-MOVE destination's TCP connect and TLS handshake (pynetdicom shakes hands inside connect(),
    # under this timeout, None by default: a TLS peer that accepted and said nothing held the move and
    # the server's stop for ever; an outside re-check, 2026-12-05)
    ae.connection_timeout = timeout
    for uid in storage_sop_classes():
        ae.add_supported_context(uid, syntaxes, scu_role=True, scp_role=True)
    ae.add_supported_context("1.2.840.10008.1.1", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])  # C-ECHO
    for model in QR_MODELS.values():
        for uid in model:
            ae.add_supported_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    qr = qr_service(
        store, ae_title=ae_title, peers=peers or {}, open_to_all=is_loopback(host), pool=pool, tls_peers=tls_peers
    )
    handlers: list[Any] = [(evt.EVT_C_STORE, on_store), *qr.handlers(), *_AssociationLog.handlers()]
    # pynetdicom's start_server, with medcodec's server class and connection handler from the start
    server = ae.make_server(
        (host, port), evt_handlers=handlers, server_class=_server_class(tls),
        request_handler=_request_handler(qr, timeout),
    )  # fmt: skip
    # socketserver listens with a backlog of 5: in a burst of connections (a modality's parallel
    # senders, a C-MOVE fan-in) one in seven waited a second for the SYN to be sent again (an outside
    # re-check, 2026-12-05); listen() again sets the kernel's queue
    with contextlib.suppress(OSError, AttributeError):
        server.socket.listen(LISTEN_BACKLOG)  # type: ignore[union-attr]
    ae._servers.append(server)  # as start_server does: the server's shutdown takes it out
    what = "DICOM TLS" if tls is not None else "DICOM"
    threading.Thread(target=server.serve_forever, name=f"{what} SCP on {host}:{port}", daemon=True).start()
    return Scp(server=server, port=int(server.server_address[1]))


def storage_transfer_syntaxes() -> list[Any]:
    """The transfer syntaxes of every storage context (C-STORE in; C-GET out): the uncompressed ones
    and the compressed ones senders use, then what a retrieve may make (the lossless transcodes and
    the presets' syntaxes; C-GET: the requestor accepts one of them per SOP class).
    docs/conformance.md lists them (``tests/service/test_conformance.py`` compares)."""
    from pydicom.uid import (
        JPEG2000,
        UID,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        JPEG2000Lossless,
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        JPEGLosslessSV1,
        JPEGLSLossless,
        JPEGLSNearLossless,
        RLELossless,
    )

    from ..delivery.live import lossless_transcodes, preset_syntaxes

    received = [
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        JPEGLosslessSV1,
        JPEGLSLossless,
        JPEGLSNearLossless,
        JPEG2000Lossless,
        JPEG2000,
        RLELossless,
    ]
    outgoing = [*lossless_transcodes(), *(uid for uids in preset_syntaxes().values() for uid in uids)]
    return list(dict.fromkeys([*received, *(UID(uid) for uid in outgoing)]))


def _server_class(tls: ssl.SSLContext | None) -> Any:
    """pynetdicom's threaded association server, whose accept loop only accepts: with ``tls``, the
    connection is wrapped without its handshake, which :func:`_request_handler`'s ``handle`` does in
    the connection's thread under the DIMSE timeout. (pynetdicom shakes hands in the accept loop,
    on a socket with no timeout: one connection that never says hello stops every other.)"""
    from pynetdicom.transport import ThreadedAssociationServer

    class _Server(ThreadedAssociationServer):
        #: connections still in their TLS handshake (:func:`_shake_hands`): cut by :meth:`Scp.stop`
        handshaking: set[Any]

        def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
            assert self.socket is not None
            connection, address = self.socket.accept()
            if tls is not None:
                connection = tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
            return connection, address

    _Server.handshaking = set()
    return _Server


class _AssociationLog:
    """One line per association when its thread ends (:func:`_request_handler` wraps its ``run``):
    INFO for one that was established (the peer, how long, released, aborted or dropped, the
    requests it made, what its C-STOREs did, what a retrieve's sub-operations did), WARNING for one
    rejected (A-ASSOCIATE-RJ: more than :data:`MAX_ASSOCIATIONS` at once); connections that never
    asked for one are pynetdicom's warning. Counts live on the association object."""

    @staticmethod
    def handlers() -> list[Any]:
        from pynetdicom import evt

        return [
            (evt.EVT_ACCEPTED, _AssociationLog.accepted),
            (evt.EVT_DIMSE_RECV, _AssociationLog.received),
            (evt.EVT_DIMSE_SENT, _AssociationLog.sent),
        ]

    @staticmethod
    def _counts(assoc: Any) -> collections.Counter[str]:
        counts = getattr(assoc, "_medcodec_counts", None)
        if counts is None:
            counts = assoc._medcodec_counts = collections.Counter()
        return counts

    @staticmethod
    def count(assoc: Any, what: str) -> None:
        _AssociationLog._counts(assoc)[what] += 1

    @staticmethod
    def accepted(event: Any) -> None:
        event.assoc._medcodec_since = time.monotonic()

    @staticmethod
    def received(event: Any) -> None:  # requests only: C_STORE_RQ -> "C-STORE" (a C-GET's responses are not)
        name = type(event.message).__name__
        if name.endswith("_RQ"):
            _AssociationLog.count(event.assoc, name[:-3].replace("_", "-"))

    @staticmethod
    def sent(event: Any) -> None:  # a retrieve's final response: what its sub-operations did
        if type(event.message).__name__ not in ("C_GET_RSP", "C_MOVE_RSP"):
            return
        command = event.message.command_set
        if int(command.get("Status", 0xFF00)) in (0xFF00, 0xFF01):  # pending: the final one counts
            return
        counts = _AssociationLog._counts(event.assoc)
        for keyword, what in (("NumberOfCompletedSuboperations", "sent"), ("NumberOfWarningSuboperations", "sent"),
                              ("NumberOfFailedSuboperations", "failed")):  # fmt: skip
            counts[what] += int(command.get(keyword, 0) or 0)

    @staticmethod
    def ended(assoc: Any) -> None:
        peer = assoc.requestor
        who = f"{str(peer.ae_title).strip()!r} at {peer.address}:{peer.port}" + getattr(assoc, "_medcodec_tls", "")
        since = getattr(assoc, "_medcodec_since", None)
        if since is None:
            if getattr(assoc, "is_rejected", False):
                log.warning("DICOM association from %s rejected (called AE title %r)", who,
                            str(assoc.acceptor.ae_title).strip())  # fmt: skip
            return
        counts = _AssociationLog._counts(assoc)
        requests = [f"{n} {kind}" for kind, n in sorted(counts.items()) if kind.startswith("C-")]
        outcomes = [f"{counts[k]} {k}" for k in ("stored", "duplicate", "conflict", "refused") if counts[k]]
        if counts["C-STORE"] and outcomes:
            requests[requests.index(f"{counts['C-STORE']} C-STORE")] += f" ({', '.join(outcomes)})"
        if counts["sent"] or counts["failed"]:  # a C-GET's or C-MOVE's instances (a silent destination: failed)
            requests.append(f"{counts['sent']} instance(s) sent, {counts['failed']} failed")
        how = "released" if assoc.is_released else "aborted" if assoc.is_aborted else "dropped (no release)"
        log.info("DICOM association with %s %s after %.1f s: %s", who, how, time.monotonic() - since,
                 ", ".join(requests) or "no request")  # fmt: skip


def _storage_class(uid: Any) -> bool:
    """Whether pynetdicom serves ``uid`` as a storage SOP class (else it aborts the association)."""
    from pynetdicom.service_class import StorageServiceClass
    from pynetdicom.sop_class import uid_to_service_class

    return issubclass(uid_to_service_class(str(uid or "")), StorageServiceClass)


def _refuse_store(assoc: Any, request: Any, context_id: int) -> None:
    """Answer the C-STORE ``request`` 0x0122 "SOP Class not supported" (PS3.7 C.1), the association
    kept: its Affected SOP Class UID is no storage class (the context negotiated one)."""
    from pynetdicom.dimse_primitives import C_STORE

    uid = str(request.AffectedSOPClassUID or "")
    log.warning("C-STORE refused: Affected SOP Class UID %r is not a storage SOP class", uid[:64])
    _AssociationLog.count(assoc, "refused")
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = request.MessageID
    with contextlib.suppress(Exception):  # (as garbled as the class UID: the response goes without it)
        rsp.AffectedSOPInstanceUID = request.AffectedSOPInstanceUID
    rsp.Status = 0x0122
    rsp.ErrorComment = error_comment(f"{uid[:40]!r} is not a storage SOP class")  # type: ignore[assignment]
    assoc.dimse.send_msg(rsp, context_id)


#: Connections the kernel queues for the SCP before it accepts them (socketserver's default: 5).
LISTEN_BACKLOG = 128

#: Seconds between the checks of :func:`_end_with_the_connection`.
CONNECTION_POLL = 0.1


def _end_with_the_connection(assoc: Any) -> None:
    """Make ``assoc``'s waits for a primitive (the A-ASSOCIATE-RQ first) end when its connection has
    ended: pynetdicom waits the whole ACSE timeout (30 s) for the request even when the peer has
    closed the connection or sent what its DUL could not read, and each such wait holds one of the
    :data:`MAX_ASSOCIATIONS` slots: 32 connections opened and closed at once (a port scan, a TCP
    health check) refused every modality's association for 30 s, and one a second for ever (an
    outside audit, 2026-12-05; PS3.8 9.2: a transport closed in Sta2 is AA-5, the end)."""
    dul = assoc.dul
    receive = dul.receive_pdu

    def receive_pdu(wait: bool = False, timeout: float | None = None) -> Any:
        if not wait:
            return receive(wait, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = CONNECTION_POLL if deadline is None else min(CONNECTION_POLL, deadline - time.monotonic())
            primitive = receive(True, max(left, 0.0))
            if primitive is not None or (deadline is not None and time.monotonic() >= deadline):
                return primitive
            if not dul.is_alive() or getattr(dul.socket, "socket", True) is None:  # the connection is gone
                return receive(False, None)

    dul.receive_pdu = receive_pdu


def _shake_hands(connection: ssl.SSLSocket, address: Any) -> bool:
    """The TLS handshake of an accepted connection (under its timeout); False, with a WARNING line
    saying why, when it fails: a caller without a certificate the CA signed, a plain DICOM
    association on the TLS port, an old TLS version, a connection that never says hello."""
    try:
        connection.do_handshake()
        return True
    except (OSError, ValueError) as exc:  # ssl.SSLError, a reset, socket.timeout
        reason = str(getattr(exc, "reason", None) or "")
        detail = str(getattr(exc, "verify_message", None) or "")  # what OpenSSL found in the certificate
        if isinstance(exc, TimeoutError):
            why = "no TLS handshake within the DIMSE timeout"
        elif detail:
            why = f"its certificate was not accepted: {detail} ({reason or 'verify failed'})"
        else:
            why = _HANDSHAKE_FAILURES.get(reason, "")
            why = f"{why} ({reason})" if why else reason or str(exc) or type(exc).__name__
        log.warning("DICOM TLS connection from %s:%s refused: %s", address[0], address[1], why)
        return False


#: What OpenSSL's reasons for a failed handshake mean on the SCP's TLS port.
_HANDSHAKE_FAILURES = {
    "CERTIFICATE_VERIFY_FAILED": "its certificate was not accepted (not signed by a --dimse-tls-ca authority?)",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "it presented no certificate (--dimse-tls-ca requires one)",
    "WRONG_VERSION_NUMBER": "not TLS: plain DICOM on the TLS port?",
    "HTTP_REQUEST": "not TLS: an HTTP request",
    "UNSUPPORTED_PROTOCOL": "a TLS version older than 1.2",
    "NO_SHARED_CIPHER": "no cipher suite in common",
    "UNEXPECTED_EOF_WHILE_READING": "it closed the connection during the handshake",
}


def _certificate_subject(connection: ssl.SSLSocket) -> str:
    """``, certificate 'CN=...'`` of a caller that presented one (mutual TLS), else ``""``."""
    try:
        certificate = connection.getpeercert()
    except (OSError, ValueError):
        return ""
    if not certificate:
        return ""
    subject: Any = certificate.get("subject", ())  # ((("commonName", "ws1"),), ...)
    names = [f"CN={value}" for rdn in subject for key, value in rdn if key == "commonName"]
    return f", certificate {', '.join(names) or 'without a common name'!r}"


def _request_handler(qr: Any, timeout: float) -> Any:
    """pynetdicom's acceptor request handler, with these changes to each association it creates:

    * its socket times out after ``timeout`` seconds of a read or a write that does not move
      (:data:`.settings.DIMSE_TIMEOUT`);

    * presentation contexts: for a SOP class the requestor proposes to receive on (SCP role, a
      C-GET), the acceptor's syntax list is reordered by :func:`.dimse_qr.requestor_order` before
      pynetdicom negotiates (it takes the first syntax of the acceptor's list the context offers),
      for one it sends on (C-STORE) by :func:`sender_order`;
    * a C-MOVE that :func:`.dimse_qr.refuse_move` refuses is answered at once, not handed to
      pynetdicom's C-MOVE SCP (which associates with the destination before any status);
    * a C-STORE of no storage class is refused (0x0122), not the association aborted;
    * its waits end with its connection (:func:`_end_with_the_connection`), and a known C-MOVE
      destination it cannot reach is 0xA702, not "unknown" (:func:`.dimse_qr.mend_retrieve_response`).

    They use pynetdicom internals (``RequestHandler._create_association``,
    ``ACSE._negotiate_as_acceptor``, ``Association._serve_request``: pynetdicom 2.1-3.0); without
    them the association is pynetdicom's own.
    """
    from pynetdicom.acse import ACSE
    from pynetdicom.dimse_primitives import C_MOVE, C_STORE
    from pynetdicom.transport import RequestHandler

    from .dimse_qr import JPEG_BASELINE, mend_retrieve_response, refuse_move, requestor_order, syntax_preference

    class _Acse(ACSE):
        def _negotiate_as_acceptor(self) -> None:
            try:
                _prefer_requestor_order(self.requestor, self.acceptor)
            except Exception:  # pragma: no cover - the requestor's own order is a preference only
                log.exception("C-GET transfer syntax order not applied")
            super()._negotiate_as_acceptor()

    def _prefer_requestor_order(requestor: Any, acceptor: Any) -> None:
        roles = requestor.role_selection  # {SOP Class UID: role selection item}
        proposed: dict[str, list[str]] = {}  # storage the requestor receives on (C-GET)
        sends: dict[str, list[str]] = {}  # storage the requestor sends on (C-STORE)
        for cx in sorted(requestor.primitive.presentation_context_definition_list, key=lambda c: c.context_id):
            item = roles.get(cx.abstract_syntax)
            into = proposed if item is not None and item.scp_role else sends
            into.setdefault(str(cx.abstract_syntax), []).extend(str(ts) for ts in cx.transfer_syntax)
        makes = syntax_preference("") if proposed else []
        # the catalog is asked only about classes whose context offers 8-bit JPEG and something else
        # (the choice it decides), not about every stored instance on each C-GET association
        undecided = [cls for cls, tss in proposed.items() if JPEG_BASELINE in tss and len(set(tss)) > 1]
        narrow = qr.store.catalog.classes_with_images_up_to_8_bits(undecided)
        for cx in acceptor.supported_contexts:  # this association's own copy
            supported = [str(ts) for ts in cx.transfer_syntax]
            if str(cx.abstract_syntax) in proposed:
                cx.transfer_syntax = requestor_order(
                    proposed[str(cx.abstract_syntax)], supported, makes=makes, sop_class=str(cx.abstract_syntax),
                    narrow=narrow,
                )  # fmt: skip
            elif str(cx.abstract_syntax) in sends:  # (verification, Q/R: uncompressed only, the requestor's order)
                cx.transfer_syntax = sender_order(sends[str(cx.abstract_syntax)], supported)

    class _Handler(RequestHandler):
        def handle(self) -> None:
            self.request.settimeout(timeout)  # accept() gave a blocking socket with no timeout at all
            if isinstance(self.request, ssl.SSLSocket):
                waiting: set[Any] = getattr(self.server, "handshaking", set())
                waiting.add(self.request)
                try:
                    if not _shake_hands(self.request, self.client_address):
                        return  # (socketserver closes the connection)
                finally:
                    waiting.discard(self.request)
            # each DIMSE message is a few small PDUs; with Nagle's algorithm each waited for the peer's
            # delayed ACK (DCMTK getscu of 100 MR slices on loopback: 9.2-9.5 s, 6.4-6.5 s without; an
            # outside audit measured 90 s -> 49 s for 1,000 small instances, DCMTK's dcmqrscp 89 s)
            with contextlib.suppress(OSError):
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle()

        def _create_association(self) -> Any:
            assoc = super()._create_association()
            if isinstance(self.request, ssl.SSLSocket):  # for the association's log line
                tls = f" over {self.request.version()}{_certificate_subject(self.request)}"
                assoc._medcodec_tls = tls  # type: ignore[attr-defined]
            if not hasattr(assoc, "acse") or not hasattr(assoc, "_serve_request"):  # pragma: no cover
                return assoc
            assoc.acse = _Acse(assoc)
            _end_with_the_connection(assoc)
            send_msg = assoc.dimse.send_msg

            def send_response(primitive: Any, context_id: int) -> None:
                mend_retrieve_response(assoc, primitive)
                send_msg(primitive, context_id)

            assoc.dimse.send_msg = send_response  # type: ignore[method-assign]
            serve, run = assoc._serve_request, assoc.run

            def run_and_log() -> None:
                try:
                    run()
                finally:
                    try:
                        _AssociationLog.ended(assoc)
                    except Exception:  # pragma: no cover - a log line never ends an association badly
                        log.exception("association not logged")

            assoc.run = run_and_log  # type: ignore[method-assign]

            def serve_request(msg: Any, context_id: int) -> None:
                if isinstance(msg, C_STORE) and msg.is_valid_request and not _storage_class(msg.AffectedSOPClassUID):
                    # pynetdicom has no service for it and aborts the association: a sender's batch
                    # stopped at one file whose UIDs it read as UN (an outside audit, 2026-12-05)
                    _refuse_store(assoc, msg, context_id)
                    return
                if isinstance(msg, C_MOVE) and msg.is_valid_request:
                    try:
                        rsp = refuse_move(qr, assoc, msg, context_id)
                    except Exception:  # never the association's thread: pynetdicom's own C-MOVE SCP answers
                        log.exception("C-MOVE request not checked")
                        rsp = None
                    if rsp is not None:
                        assoc.dimse.send_msg(rsp, context_id)
                        return
                serve(msg, context_id)

            assoc._serve_request = serve_request  # type: ignore[method-assign]
            return assoc

    return _Handler
