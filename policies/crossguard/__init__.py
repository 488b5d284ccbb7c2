"""The secstack CrossGuard pack: the policies `pulumi preview --policy-pack` and `secstack preview` enforce."""
