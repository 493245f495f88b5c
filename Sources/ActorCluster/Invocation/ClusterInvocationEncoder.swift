import Foundation
import Distributed
import SwiftProtobuf

/// Records a distributed call's arguments as serialized protobuf messages, in order.
public struct ClusterInvocationEncoder: DistributedTargetInvocationEncoder {
    public typealias SerializationRequirement = any SwiftProtobuf.Message

    var arguments: [Data] = []

    public init() {}

    public mutating func recordGenericSubstitution<T>(_ type: T.Type) throws {
        throw ClusterError(.serialization, "generic distributed methods are not supported (substitution \(T.self))")
    }

    public mutating func recordArgument<Value: SwiftProtobuf.Message>(_ argument: RemoteCallArgument<Value>) throws {
        do {
            arguments.append(try argument.value.serializedData())
        } catch {
            throw ClusterError(.serialization, "argument '\(argument.label ?? argument.effectiveLabel)' of type \(Value.self) did not serialize", cause: error)
        }
    }

    public mutating func recordErrorType<E: Error>(_ type: E.Type) throws {}

    public mutating func recordReturnType<R: SwiftProtobuf.Message>(_ type: R.Type) throws {}

    public mutating func doneRecording() throws {}
}
