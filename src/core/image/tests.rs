//! The pure parts of the image pool: numbers and names, the use/release
//! table, access and name resolution. The pool over a real store and
//! directory is tested in `crate::store`'s image tests.

use super::*;

fn img(id: u64, owner: u64, name: &str) -> Image {
    Image {
        id,
        owner,
        name: name.into(),
        image_type: ImageType::Os,
        state: ImageState::Ready,
        size_mb: 1,
        public: false,
        persistent: false,
        running_vms: 0,
        checksum: String::new(),
        registered: 0,
        template: BTreeMap::new(),
    }
}

#[test]
fn numbers_and_names_are_opennebulas() {
    let types: Vec<_> = ImageType::ALL
        .iter()
        .map(|t| (t.number(), t.name()))
        .collect();
    assert_eq!(types, [(0, "OS"), (1, "CDROM"), (2, "DATABLOCK")]);
    let states: Vec<_> = ImageState::ALL
        .iter()
        .map(|s| (s.number(), s.name(), s.short_name()))
        .collect();
    assert_eq!(
        states,
        [
            (0, "INIT", "init"),
            (1, "READY", "rdy"),
            (2, "USED", "used"),
            (3, "DISABLED", "disa"),
            (4, "LOCKED", "lock"),
            (5, "ERROR", "err"),
        ]
    );
    for state in ImageState::ALL {
        assert_eq!(ImageState::from_number(state.number().into()), Some(state));
    }
    assert_eq!(ImageState::from_number(6), None);
    assert_eq!(ImageType::from_number(3), None);
    assert_eq!("cdrom".parse::<ImageType>().ok(), Some(ImageType::Cdrom));
    assert_eq!(
        "DataBlock".parse::<ImageType>().ok(),
        Some(ImageType::Datablock)
    );
    assert!("disk".parse::<ImageType>().is_err());
}

#[test]
fn use_table_covers_every_state() {
    for state in ImageState::ALL {
        for persistent in [false, true] {
            let mut image = img(4, 1, "x");
            image.state = state;
            image.persistent = persistent;
            image.running_vms = u32::from(state == ImageState::Used);
            let result = use_image(&image);
            match (state, persistent) {
                (ImageState::Ready, _) => {
                    let used = result.expect("ready is usable");
                    assert_eq!((used.state, used.running_vms), (ImageState::Used, 1));
                }
                (ImageState::Used, false) => {
                    assert_eq!(result.expect("shared").running_vms, 2);
                }
                (ImageState::Used, true) => {
                    assert!(matches!(result, Err(Error::Conflict(_))), "{result:?}");
                }
                (other, _) => match result {
                    Err(Error::InvalidState {
                        kind: Kind::Image,
                        state,
                        action,
                        ..
                    }) => {
                        assert_eq!(state, other.name());
                        assert_eq!(action, "use");
                    }
                    unexpected => panic!("{other}: {unexpected:?}"),
                },
            }
        }
    }
}

#[test]
fn release_counts_down_to_ready() {
    let mut image = img(4, 1, "x");
    image.state = ImageState::Used;
    image.running_vms = 2;
    let once = release_image(&image);
    assert_eq!((once.state, once.running_vms), (ImageState::Used, 1));
    let twice = release_image(&once);
    assert_eq!((twice.state, twice.running_vms), (ImageState::Ready, 0));
    let again = release_image(&twice);
    assert_eq!((again.state, again.running_vms), (ImageState::Ready, 0));
}

#[test]
fn names_resolve_own_first_then_visible_and_ids_exactly() {
    let mut public = img(3, 2, "base");
    public.public = true;
    let images: BTreeMap<u64, Image> = [img(1, 1, "base"), img(2, 2, "private"), public]
        .into_iter()
        .map(|i| (i.id, i))
        .collect();
    let found = |uid, key: &str| resolve(&images, uid, key, "show").map(|i| i.id);
    assert_eq!(found(1, "base").ok(), Some(1), "own first");
    assert_eq!(found(5, "base").ok(), Some(3), "then public");
    assert_eq!(found(1, "3").ok(), Some(3));
    assert!(matches!(found(1, "2"), Err(Error::Forbidden { .. })));
    assert!(matches!(found(1, "private"), Err(Error::Forbidden { .. })));
    assert!(matches!(found(1, "9"), Err(Error::NotFound { .. })));
    assert!(matches!(found(1, "none"), Err(Error::NotFound { .. })));
    assert_eq!(found(ADMIN_UID, "private").ok(), Some(2));
    assert!(
        matches!(found(ADMIN_UID, "base"), Err(Error::Invalid { .. })),
        "two images named base are visible to oneadmin"
    );
}

#[test]
fn names_and_attributes_are_checked() {
    for bad in ["", " ", "42", "new\nline", &"x".repeat(129)] {
        assert!(validate_name(bad).is_err(), "{bad:?} accepted");
    }
    for good in ["Ubuntu 9.04 LAMP", "ec2-5f1c", "1st", "débian"] {
        assert!(validate_name(good).is_ok(), "{good:?} refused");
    }
    assert_eq!(
        attribute_name("dev_prefix").ok().as_deref(),
        Some("DEV_PREFIX")
    );
    assert!(attribute_name("A-B").is_err());
    assert!(attribute_name("").is_err());
    assert!(attribute_value("two\nlines").is_err());
}

#[test]
fn size_limit_counts_bytes() {
    assert!(check_size(10, 10).is_ok());
    assert!(matches!(
        check_size(11, 10),
        Err(Error::TooLarge { limit: 10, .. })
    ));
    assert_eq!(
        check_size(11, 10).expect_err("over").to_string(),
        "image is larger than the limit of 10 bytes"
    );
}
