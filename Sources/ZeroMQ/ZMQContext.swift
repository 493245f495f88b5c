import CZeroMQ

/// A libzmq context: the owner of libzmq's own I/O threads and of every socket made from it.
///
/// Thread-safety: `zmq_ctx_*` functions are documented thread-safe, so a context may be
/// shared freely; sockets made from it may not (see ``ZMQSocket``).
public final class ZMQContext: @unchecked Sendable {
    // @unchecked: zmq_ctx_* is documented thread-safe; `handle` is immutable and freed once in deinit.
    let handle: UnsafeMutableRawPointer

    /// Creates a context.
    /// - Parameter ioThreads: libzmq background I/O threads (1 is right for a few hundred MB/s).
    /// - Throws: ``ZMQError`` if libzmq cannot create one.
    public init(ioThreads: Int = 1) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads))
        zmq_ctx_set(handle, ZMQ_BLOCKY, 0)
        self.handle = handle
    }

    deinit {
        // Sockets are closed by their owners with LINGER=0 before the context goes away, so
        // zmq_ctx_term does not wait; shutdown first makes any stray blocking call return.
        zmq_ctx_shutdown(handle)
        zmq_ctx_term(handle)
    }

    /// Whether libzmq was built with a capability, for example `"curve"`.
    public static func has(_ capability: String) -> Bool {
        zmq_has(capability) == 1
    }

    /// The libzmq version, for example `(4, 3, 4)`.
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }
}
