/* The ABI version native_library.py compiles in (-DCB_ABI_VERSION) and checks when it loads the library. */
#ifndef CB_ABI_VERSION
#error "build through chrombench.baselines.native_library, which sets CB_ABI_VERSION"
#endif

int cb_abi_version(void) { return CB_ABI_VERSION; }
