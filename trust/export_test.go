package trust

// StoreFileName is DirStore's file name for a key, for tests that simulate
// a directory on another kind of file system.
var StoreFileName = storeFileName
