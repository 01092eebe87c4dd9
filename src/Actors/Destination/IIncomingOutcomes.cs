namespace Migration.Actors.Destination;

/// <summary>
/// The two ends of an incoming migration that its collaborators may decide on (IncomingOwnership,
/// LostCommitResolver); the IncomingMigration implements them, since ending stops the actor.
/// Threading: called only on the IncomingMigration's thread, from within one of its message handlers.
/// </summary>
internal interface IIncomingOutcomes
{
    /// <summary>A majority confirmed this node's epoch: resume the guest here and hand it to the node.</summary>
    void Resume();

    /// <summary>The source keeps the guest (or took it back, or is gone before Verified): discard the copy here (the source is not told).</summary>
    void Discard(string reason);
}
