import Distributed
import Foundation
import SwiftProtobuf
import Synchronization

/// The arguments of one call, decoded in order by a ``WireMethod``'s body.
///
/// At registration the same body runs against ``WireArguments/recording``, which hands out
/// default-valued messages, so the body never needs two versions.
public final class WireArguments {
    private let method: String
    private let encoded: [Data]?
    private var index = 0

    init(method: String, encoded: [Data]?) {
        self.method = method
        self.encoded = encoded
    }

    /// Arguments for a registration run: every `next()` returns a default message.
    static func recording(_ method: String) -> WireArguments { WireArguments(method: method, encoded: nil) }

    /// Decodes the next argument.
    /// - Throws: ``RemoteCallError`` `arguments.invalid` if there is none or it does not decode.
    public func next<Argument: SwiftProtobuf.Message>(_ type: Argument.Type = Argument.self) throws -> Argument {
        guard let encoded else { return Argument() }
        guard index < encoded.count else {
            throw RemoteCallError(code: RemoteCallError.argumentsInvalid, typeName: "",
                                  message: "\(method): too few arguments, \(encoded.count) given")
        }
        defer { index += 1 }
        do {
            return try Argument(serializedBytes: encoded[index])
        } catch {
            throw RemoteCallError(code: RemoteCallError.argumentsInvalid, typeName: "",
                                  message: "\(method): argument \(index + 1) is not a valid \(Argument.protoMessageName): \(error)")
        }
    }
}

/// One distributed method exposed under a stable wire name, with the body that calls it.
///
/// The body decodes the arguments and calls the method, e.g.
/// `WireMethod("Sampler.sample") { try await $0.sample($1.next()) }`. It serves twice:
/// - At registration it runs against a recording proxy (nothing is sent) to learn the method's
///   compiled identifier and arity, which ties the stable name to the method through the type
///   checker instead of hand-written mangled names.
/// - On the receiving node it runs against the local actor to execute a call, like a gRPC
///   method handler. This avoids `executeDistributedTarget`, whose runtime demangling of the
///   target cost about a fifth of the callee's time per call in `bench actors`.
public struct WireMethod<Act: DistributedActor>: Sendable where Act.ActorSystem == ClusterSystem {
    public let name: String
    let body: @Sendable (Act, WireArguments) async throws -> (any SwiftProtobuf.Message)?

    /// A method returning a protobuf message.
    public init<Result: SwiftProtobuf.Message>(
        _ name: String, _ body: @escaping @Sendable (Act, WireArguments) async throws -> Result
    ) {
        self.name = name
        self.body = { actor, arguments in try await body(actor, arguments) }
    }

    /// A method returning nothing.
    public init(_ name: String, _ body: @escaping @Sendable (Act, WireArguments) async throws -> Void) {
        self.name = name
        self.body = { actor, arguments in
            try await body(actor, arguments)
            return nil
        }
    }
}

/// A distributed actor whose methods can be called across nodes: it lists them with their
/// stable wire names. Register the type on every node that calls or hosts it with
/// ``ClusterSystem/register(_:)``.
public protocol ClusterCallable: DistributedActor where ActorSystem == ClusterSystem {
    static var wireMethods: [WireMethod<Self>] { get }
}

/// Two-way map between stable wire names and the compiled identifiers of distributed methods,
/// holding each method's handler.
///
/// Thread-safety: a `Mutex` guards the tables; lookups are cheap and lock-scoped.
final class MethodRegistry: Sendable {
    struct Entry: Sendable {
        var name: String
        var identifier: String
        var arity: Int
        /// Runs the method on a local actor; fails if the actor is of another type.
        var invoke: @Sendable (any DistributedActor, WireArguments) async throws -> (any SwiftProtobuf.Message)?
    }

    private struct Tables {
        var byName: [String: Entry] = [:]
        var byIdentifier: [String: Entry] = [:]
    }

    private let tables = Mutex(Tables())

    func add(_ entry: Entry) throws(ClusterError) {
        try tables.withLock { tables throws(ClusterError) in
            if let existing = tables.byName[entry.name], existing.identifier != entry.identifier {
                throw ClusterError(.configuration, "wire name '\(entry.name)' is already used by another method")
            }
            if let existing = tables.byIdentifier[entry.identifier], existing.name != entry.name {
                throw ClusterError(.configuration, "method registered as '\(existing.name)' cannot also be '\(entry.name)'")
            }
            tables.byName[entry.name] = entry
            tables.byIdentifier[entry.identifier] = entry
        }
    }

    func entry(named name: String) -> Entry? {
        tables.withLock { $0.byName[name] }
    }

    func entry(identifier: String) -> Entry? {
        tables.withLock { $0.byIdentifier[identifier] }
    }
}

/// Task-local state of a registration: while set, a remote call records its target instead of
/// sending anything.
final class MethodRecording: Sendable {
    struct Recorded: Sendable {
        var identifier: String
        var arity: Int
    }

    @TaskLocal static var current: MethodRecording?

    let recorded = Mutex<Recorded?>(nil)

    /// Thrown by the recording remote call to stop the invocation once the target is known.
    struct Done: Error {}
}
