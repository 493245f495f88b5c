import Foundation
import Synchronization

/// A loopback TCP relay for tests: forwards every connection to a target and can turn into a
/// black hole (bytes read and dropped, connections left open), which is what a cut network
/// link looks like to both ends: silence, with no FIN or RST.
final class TCPRelay: Sendable {
    let port: UInt16
    private let listener: Int32
    private let target = Mutex<UInt16?>(nil)
    private let blackHoled = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let descriptors = Mutex<[Int32]>([])

    /// Listens on a free loopback port; forwards nowhere until ``forward(toPort:)``.
    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw TestFailure("socket() failed") }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            close(listener)
            throw TestFailure("relay could not listen")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        self.port = UInt16(bigEndian: address.sin_port)
        Thread { [self] in acceptLoop() }.start()
    }

    var endpoint: String { "tcp://127.0.0.1:\(port)" }

    func forward(toPort port: UInt16) { target.withLock { $0 = port } }

    /// From now on, drop every byte in both directions without closing anything.
    func blackHole() { blackHoled.store(true, ordering: .relaxed) }

    /// Closes the listener and every relayed connection.
    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in descriptors.withLock({ $0 }) {
            shutdown(fd, Int32(SHUT_RDWR))
        }
    }

    private func acceptLoop() {
        while !stopped.load(ordering: .relaxed) {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            guard let port = target.withLock({ $0 }) else {
                close(client)
                continue
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = port.bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                close(client)
                close(upstream)
                continue
            }
            descriptors.withLock { $0.append(contentsOf: [client, upstream]) }
            Thread { [self] in pump(from: client, to: upstream) }.start()
            Thread { [self] in pump(from: upstream, to: client) }.start()
        }
    }

    private func pump(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            if blackHoled.load(ordering: .relaxed) { continue }
            var offset = 0
            while offset < count {
                let written = buffer.withUnsafeBytes { write(destination, $0.baseAddress! + offset, count - offset) }
                guard written > 0 else { return }
                offset += written
            }
        }
        shutdown(destination, Int32(SHUT_WR))
    }
}
