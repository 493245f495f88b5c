import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 server on 127.0.0.1 for tests: every request is answered by a script the
/// test gives, so a test can play a model server that is slow, fails, or says nonsense.
public final class ScriptedHTTPServer: Sendable {
    /// One request as the server received it.
    public struct Request: Sendable {
        public var method: String
        public var uri: String
        public var headers: [(String, String)]
        public var body: Data

        /// The body as a JSON object (nil if it is not one).
        public var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        }

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// What to do with a request.
    public enum Action: Sendable {
        /// Reply with this status, body and headers, after `delay`.
        case reply(status: Int, body: Data, headers: [(String, String)] = [], delay: Duration = .zero)
        /// Send a head that promises `promised` bytes, then only `body`, then close.
        case truncate(body: Data, promised: Int)
        /// Close the connection without a reply.
        case hangUp

        /// A 200 reply with a JSON body.
        public static func json(_ text: String, delay: Duration = .zero) -> Action {
            .reply(status: 200, body: Data(text.utf8), headers: [("Content-Type", "application/json")], delay: delay)
        }
    }

    /// Decides the action for the `number`th request (from 1).
    public typealias Script = @Sendable (_ number: Int, _ request: Request) -> Action

    public let port: Int
    private let channel: any Channel
    private let state: NIOLockedValueBox<[Request]>

    /// Starts listening on a free loopback port.
    public init(script: @escaping Script) async throws {
        let state = NIOLockedValueBox<[Request]>([])
        self.state = state
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(state: state, script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    /// `http://127.0.0.1:PORT`
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The requests received so far, in order.
    public var requests: [Request] { state.withLockedValue { $0 } }

    public func stop() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        // @unchecked: an instance lives on its channel's event loop; NIO calls it only there.
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let state: NIOLockedValueBox<[Request]>
        let script: Script
        var head: HTTPRequestHead?
        var body = Data()

        init(state: NIOLockedValueBox<[Request]>, script: @escaping Script) {
            self.state = state
            self.script = script
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case let .head(head):
                self.head = head
                body = Data()
            case var .body(buffer):
                body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
            case .end:
                guard let head else { return }
                let request = Request(method: "\(head.method)", uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: body)
                let number = state.withLockedValue { requests in
                    requests.append(request)
                    return requests.count
                }
                respond(script(number, request), context: context, keepAlive: head.isKeepAlive)
            }
        }

        private func respond(_ action: Action, context: ChannelHandlerContext, keepAlive: Bool) {
            let loop = context.eventLoop
            let boundContext = NIOLoopBound(context, eventLoop: loop)
            switch action {
            case .hangUp:
                context.close(promise: nil)
            case let .truncate(body, promised):
                var headers = HTTPHeaders([("Content-Length", "\(promised)"), ("Content-Type", "application/json")])
                headers.add(name: "Connection", value: "close")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
                loop.scheduleTask(in: .milliseconds(20)) { boundContext.value.close(promise: nil) }
            case let .reply(status, body, extra, delay):
                let send: @Sendable () -> Void = {
                    let context = boundContext.value
                    var headers = HTTPHeaders(extra)
                    headers.replaceOrAdd(name: "Content-Length", value: "\(body.count)")
                    if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
                    let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
                    context.write(self.wrapOutboundOut(.head(head)), promise: nil)
                    context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
                    let done = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
                    if !keepAlive { done.whenComplete { _ in boundContext.value.close(promise: nil) } }
                }
                if delay > .zero {
                    let nanoseconds = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
                    loop.scheduleTask(in: .nanoseconds(nanoseconds)) { send() }
                } else {
                    send()
                }
            }
        }
    }
}
