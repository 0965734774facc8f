import { graphql, type ResultOf } from '../lib/graphql.js';

export const SIGN_UP = graphql(`
  mutation SignUp($email: String!, $password: String!, $nickname: String) {
    signUp(email: $email, password: $password, nickname: $nickname) { user { id } }
  }
`);

export const LOG_IN = graphql(`
  mutation LogIn($email: String!, $password: String!) {
    logIn(email: $email, password: $password) { user { id } }
  }
`);

export const LOG_OUT = graphql(`
  mutation LogOut { logOut }
`);

export const FOLDERS = graphql(`
  query Folders {
    folders {
      id
      name
      createdAt
      cover { id thumbnailUrl }
      status { total done bytesTotal bytesDone }
    }
  }
`);
export type FolderCard = ResultOf<typeof FOLDERS>['folders'][number];

export const FOLDER = graphql(`
  query Folder($id: ID!, $after: String) {
    folder(id: $id) {
      id
      name
      expiresAt
      status { total done }
      assets(first: 100, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { id name kind thumbnailUrl thumbnailStatus takenAt size }
      }
    }
  }
`);
export type FolderPhoto = ResultOf<typeof FOLDER>['folder']['assets']['nodes'][number];

export const IN_FLIGHT = graphql(`
  query InFlight($id: ID!) {
    folderSyncStatus(folderId: $id) {
      files(first: 100, states: [PENDING, UPLOADING, VERIFYING, FAILED]) { nodes { id name state size bytesDone error { code message } } }
    }
  }
`);

export const PHOTO = graphql(`
  query Photo($id: ID!) {
    asset(id: $id) {
      id
      name
      size
      mimeType
      width
      height
      takenAt
      uploadedAt
      expiresAt
      origin
      previewUrl
      thumbnailUrl
      thumbnailStatus
      downloadUrl
      kind
      durationSeconds
      videoCodec
      takenAtLocal
      takenAtZone
      camera { make model }
      location { latitude longitude altitude }
      device { name platform revoked }
    }
    similarAssets(assetId: $id, first: 12) { distance asset { id name thumbnailUrl } }
  }
`);

export const ASSETS_PROCESSED = graphql(`
  subscription AssetsProcessed {
    assetsProcessed { id thumbnailUrl thumbnailStatus previewUrl width height takenAt }
  }
`);

export const REPROCESS = graphql(`
  mutation Reprocess($id: ID) { reprocessMedia(assetId: $id) }
`);

export const DELETE_PHOTO = graphql(`
  mutation DeletePhoto($id: ID!) { deleteAsset(id: $id) { id } }
`);

export const DEVICES = graphql(`
  query Devices {
    devices { id name platform kind lastAddress lastPort lastSeenAt online current createdAt agent { folders seenAt } }
  }
`);

export const COMMAND_DEVICE = graphql(`
  mutation CommandDevice($deviceId: ID!, $folder: String, $since: DateTime) {
    commandDevice(deviceId: $deviceId, folder: $folder, since: $since) { command { id } }
  }
`);

export const CANCEL_DEVICE_COMMAND = graphql(`
  mutation CancelDeviceCommand($id: ID!) { cancelDeviceCommand(id: $id) { id } }
`);

export const DEVICE_COMMANDS = graphql(`
  subscription DeviceCommands {
    deviceCommands(first: 10) {
      id
      status
      path
      folder
      since
      createdAt
      attempts
      target { id name }
      requester { name }
      progress { filesPlanned filesDone filesFailed bytesPlanned bytesDone }
      result { files uploaded instant exists unchanged failed older }
      error { code message }
    }
  }
`);

export const REVOKE_DEVICE = graphql(`
  mutation RevokeDevice($id: ID!) { revokeDevice(id: $id) { id } }
`);

export const LIBRARY_SYNC = graphql(`
  subscription LibrarySync {
    librarySyncStatus {
      counts { filesPlanned filesDone filesFailed filesInProgress bytesPlanned bytesDone active }
      folderCount
      folders {
        folderId
        run
        folder { name }
        counts { filesPlanned filesDone filesFailed filesInProgress filesPending bytesPlanned bytesDone active }
        changes { id name state size bytesDone progress updatedAt error { code message } }
      }
    }
  }
`);
export type LibrarySync = ResultOf<typeof LIBRARY_SYNC>['librarySyncStatus'];
export type SyncFolder = LibrarySync['folders'][number];
export type SyncFile = SyncFolder['changes'][number];
