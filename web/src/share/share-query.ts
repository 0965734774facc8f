import { graphql, type ResultOf } from '../lib/graphql.js';

/** What a recipient's page shows: the share, and its photos a page at a time. */
export const SHARE = graphql(`
  query Share($token: String!, $first: Int, $after: String) {
    share(token: $token) {
      id
      title
      message
      sender { nickname }
      sharedAt
      expiresAt
      allowOriginals
      photoCount
      downloadAllUrl
      photos(first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { id name width height takenAt size thumbnailUrl previewUrl imageUrl originalUrl }
      }
    }
  }
`);

export type SharedView = ResultOf<typeof SHARE>['share'];
export type SharedPhoto = SharedView['photos']['nodes'][number];
