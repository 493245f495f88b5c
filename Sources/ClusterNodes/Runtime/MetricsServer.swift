import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// A node's Prometheus endpoint: `GET /metrics` answers with the registry in the text
/// exposition format (version 0.0.4); anything else is a 404. One small HTTP/1.1 server on
/// SwiftNIO, the stack the package already uses for its HTTP clients.
public final class MetricsServer: Sendable {
    public let host: String
    /// The port it listens on (the one asked for, or the one the system chose for 0).
    public let port: Int
    private let channel: any Channel

    /// Starts listening.
    /// - Throws: If the address cannot be bound (in use, not local).
    public init(host: String, port: Int, registry: PrometheusCollectorRegistry) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(registry: registry))
                }
            }
            .bind(host: host, port: port).get()
        self.host = host
        self.port = channel.localAddress?.port ?? port
    }

    /// `http://HOST:PORT/metrics`
    public var url: String { "http://\(host):\(port)/metrics" }

    public func stop() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        // @unchecked: an instance lives on its channel's event loop; NIO calls it only there.
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let registry: PrometheusCollectorRegistry
        var head: HTTPRequestHead?

        init(registry: PrometheusCollectorRegistry) { self.registry = registry }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case let .head(head): self.head = head
            case .body: break
            case .end:
                guard let head else { return }
                self.head = nil
                let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
                let (status, type, body): (HTTPResponseStatus, String, [UInt8])
                if head.method == .GET || head.method == .HEAD, path == "/metrics" {
                    var buffer: [UInt8] = []
                    registry.emit(into: &buffer)
                    (status, type, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", buffer)
                } else {
                    (status, type, body) = (.notFound, "text/plain; charset=utf-8", Array("only GET /metrics is served here\n".utf8))
                }
                var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", "\(body.count)")])
                if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
                if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil) }
                let keepAlive = head.isKeepAlive
                let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                    if !keepAlive { loopContext.value.close(promise: nil) }
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A malformed request: close the connection, keep serving others.
            context.close(promise: nil)
        }
    }
}
