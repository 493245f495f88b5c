import Distributed
import Foundation
import SwiftProtobuf

/// Decodes a received call's arguments, one serialized protobuf message each.
///
/// Required by `DistributedActorSystem`; ``ClusterSystem`` itself executes calls through
/// ``WireMethod`` handlers, which decode with the same ``WireArguments``.
public struct ClusterInvocationDecoder: DistributedTargetInvocationDecoder {
    public typealias SerializationRequirement = any SwiftProtobuf.Message

    private let arguments: WireArguments

    init(method: String, arguments: [Data]) {
        self.arguments = WireArguments(method: method, encoded: arguments)
    }

    public mutating func decodeGenericSubstitutions() throws -> [any Any.Type] { [] }

    public mutating func decodeNextArgument<Argument: SwiftProtobuf.Message>() throws -> Argument {
        try arguments.next(Argument.self)
    }

    public mutating func decodeErrorType() throws -> (any Any.Type)? { nil }

    public mutating func decodeReturnType() throws -> (any Any.Type)? { nil }
}
