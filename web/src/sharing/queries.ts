import { graphql, type ResultOf } from '../lib/graphql.js';

export const PEOPLE = graphql(`
  query People {
    friends { id nickname email }
    contactGroups { id name memberCount members { id nickname email } }
    incoming: friendRequests(direction: INCOMING) { id createdAt from { id nickname email } }
    outgoing: friendRequests(direction: OUTGOING) { id createdAt toEmail }
  }
`);
export type People = ResultOf<typeof PEOPLE>;

export const REQUEST_FRIEND = graphql(`
  mutation RequestFriend($email: String!) { requestFriend(email: $email) { id } }
`);
export const ACCEPT_FRIEND = graphql(`
  mutation AcceptFriend($id: ID!) { acceptFriendRequest(id: $id) { id } }
`);
export const DECLINE_FRIEND = graphql(`
  mutation DeclineFriend($id: ID!) { declineFriendRequest(id: $id) { id } }
`);
export const CANCEL_FRIEND = graphql(`
  mutation CancelFriend($id: ID!) { cancelFriendRequest(id: $id) { id } }
`);
export const REMOVE_FRIEND = graphql(`
  mutation RemoveFriend($id: ID!) { removeFriend(userId: $id) { id } }
`);
export const CREATE_GROUP = graphql(`
  mutation CreateGroup($name: String!, $memberIds: [ID!]) { createContactGroup(name: $name, memberIds: $memberIds) { id } }
`);
export const RENAME_GROUP = graphql(`
  mutation RenameGroup($id: ID!, $name: String!) { renameContactGroup(id: $id, name: $name) { id } }
`);
export const DELETE_GROUP = graphql(`
  mutation DeleteGroup($id: ID!) { deleteContactGroup(id: $id) { id } }
`);
export const ADD_MEMBERS = graphql(`
  mutation AddMembers($id: ID!, $memberIds: [ID!]!) { addContactGroupMembers(id: $id, memberIds: $memberIds) { id } }
`);
export const REMOVE_MEMBER = graphql(`
  mutation RemoveMember($id: ID!, $memberId: ID!) { removeContactGroupMember(id: $id, memberId: $memberId) { id } }
`);

export const CREATE_SHARE = graphql(`
  mutation CreateShare($input: CreateShareInput!) {
    createShare(input: $input) { share { id title expiresAt recipients { id email } } }
  }
`);

export const SHARES_SENT = graphql(`
  query SharesSent($after: String) {
    sharesSent(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id
        title
        createdAt
        expiresAt
        state
        photoCount
        allowOriginals
        recipients { id email via mailStatus mailError firstOpenedAt lastOpenedAt opens downloads revokedAt person { nickname } }
      }
    }
  }
`);
export type SentShare = ResultOf<typeof SHARES_SENT>['sharesSent']['nodes'][number];

export const REVOKE_SHARE = graphql(`
  mutation RevokeShare($id: ID!) { revokeShare(id: $id) { id } }
`);
export const REVOKE_RECIPIENT = graphql(`
  mutation RevokeRecipient($id: ID!) { revokeShareRecipient(id: $id) { id } }
`);

export const SHARED_WITH_ME = graphql(`
  query SharedWithMe($after: String) {
    sharedWithMe(first: 6, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id
        title
        message
        sender { nickname }
        sharedAt
        expiresAt
        allowOriginals
        photoCount
        downloadAllUrl
        photos(first: 8) { nodes { id name width height takenAt size thumbnailUrl previewUrl imageUrl originalUrl } }
      }
    }
  }
`);
export type ReceivedShare = ResultOf<typeof SHARED_WITH_ME>['sharedWithMe']['nodes'][number];
