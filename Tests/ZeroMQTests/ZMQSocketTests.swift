import Foundation
import Testing
import ZeroMQ

@Suite("ZMQSocket")
struct ZMQSocketTests {
    /// Receives one message, waiting up to a second.
    private func receive(_ socket: ZMQSocket) throws -> [[UInt8]]? {
        for _ in 0 ..< 100 {
            if let frames = try socket.receive() { return frames }
            _ = socket.waitReadable(timeoutMs: 10)
        }
        return nil
    }

    @Test func dealerRouterRoundTripKeepsFramesAndRoutingID() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        #expect(!endpoint.hasSuffix(":*"))
        var options = ZMQSocketOptions()
        options.routingID = Array("client-1".utf8)
        let dealer = try ZMQSocket(context: context, type: .dealer, options: options)
        try dealer.connect(endpoint)

        let big = [UInt8](repeating: 7, count: 3 << 20)
        try dealer.send([[1], [], big])
        let received = try #require(try receive(router))
        #expect(received.count == 4)
        #expect(received[0] == Array("client-1".utf8))
        #expect(received[1] == [1])
        #expect(received[2] == [])
        #expect(received[3] == big)

        try router.send([received[0], [2]])
        #expect(try receive(dealer) == [[2]])
    }

    @Test func routerRefusesUnknownPeersInsteadOfDroppingSilently() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        try router.bind("tcp://127.0.0.1:*")
        do {
            try router.send([Array("nobody".utf8), [1]])
            Issue.record("send to an unknown routing id succeeded")
        } catch {
            #expect(error.code == .hostUnreachable)
        }
    }

    @Test func bindingAnAddressInUseNamesTheEndpoint() throws {
        let context = try ZMQContext()
        let first = try ZMQSocket(context: context, type: .router)
        let endpoint = try first.bind("tcp://127.0.0.1:*")
        let second = try ZMQSocket(context: context, type: .router)
        do {
            try second.bind(endpoint)
            Issue.record("bound the same address twice")
        } catch {
            #expect(error.code == .badEndpoint)
            #expect(error.message.contains(endpoint))
        }
        #expect(throws: ZMQError.self) { try second.connect("not-an-endpoint") }
    }

    @Test(.enabled(if: ZMQContext.has("curve"), "libzmq was built without CURVE (zmq_has(\"curve\") is 0)"))
    func curveKeysAreZ85AndEncryptTraffic() throws {
        let server = try ZMQCurveKeyPair.generate()
        let client = try ZMQCurveKeyPair.generate()
        #expect(server.publicKey.utf8.count == 40 && server.secretKey.utf8.count == 40)
        #expect(try ZMQCurveKeyPair.publicKey(forSecretKey: server.secretKey) == server.publicKey)
        #expect(throws: ZMQError.self) { try ZMQCurveKeyPair.publicKey(forSecretKey: "short") }

        let context = try ZMQContext()
        var serverOptions = ZMQSocketOptions()
        serverOptions.curve = .init(keyPair: server)
        let router = try ZMQSocket(context: context, type: .router, options: serverOptions)
        let endpoint = try router.bind("tcp://127.0.0.1:*")

        var goodOptions = ZMQSocketOptions()
        goodOptions.curve = .init(keyPair: client, serverPublicKey: server.publicKey)
        let good = try ZMQSocket(context: context, type: .dealer, options: goodOptions)
        try good.connect(endpoint)
        try good.send([Array("secret".utf8)])
        let received = try #require(try receive(router))
        #expect(received.last == Array("secret".utf8))

        // A client that expects another server key never completes the handshake.
        var wrongOptions = ZMQSocketOptions()
        wrongOptions.curve = .init(keyPair: client, serverPublicKey: try ZMQCurveKeyPair.generate().publicKey)
        let wrong = try ZMQSocket(context: context, type: .dealer, options: wrongOptions)
        try wrong.connect(endpoint)
        try wrong.send([Array("intruder".utf8)])
        #expect(try receive(router) == nil)

        // A plain-text client gets nothing through either.
        let plain = try ZMQSocket(context: context, type: .dealer)
        try plain.connect(endpoint)
        try plain.send([Array("plain".utf8)])
        #expect(try receive(router) == nil)
    }
}
